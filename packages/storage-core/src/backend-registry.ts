import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { BackendDefinition } from "./backend-definition.js";
import type { StorageBackend } from "./storage-backend.js";
import { ConfigError } from "./config-error.js";
import { assertContractVersion } from "./contract-version.js";
import { assertPackageName, assertStorageType, conventionalBackendPackages } from "./storage-type-package.js";

/** Loads a module by specifier; lets an application import from its own location. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

/** Options of {@link BackendRegistry}. */
export interface BackendRegistryOptions {
  /**
   * How to import an adapter package. Defaults to resolving it from `resolveFrom`, so that the
   * application's node_modules is searched, not storage-core's.
   */
  importModule?: ModuleImporter;
  /**
   * Directories to resolve adapter packages from, in order (default: the working directory).
   * Each is searched as an application there would (its node_modules, walking up).
   */
  resolveFrom?: string | readonly string[];
  /**
   * Type → package mappings for the types whose package does not follow the convention
   * (`@egide/storage-<type>`, then `egide-storage-<type>`): the server passes the adapters it
   * ships with this way, and an application its own third-party ones.
   */
  packages?: Readonly<Record<string, string>>;
}

/**
 * Maps a configured storage `type` to the {@link BackendDefinition} exported by an installed
 * adapter package, importing the package only when that type is asked for. It names no adapter
 * itself: a type's package is the one the configuration names (`[storage] package`), else the
 * one mapped in `packages`, else the first installed of `@egide/storage-<type>` (the project's
 * own adapters) and `egide-storage-<type>` (anyone else's). Every adapter must declare a
 * contract version this storage-core supports.
 */
export class BackendRegistry {
  readonly #definitions = new Map<string, BackendDefinition<unknown, StorageBackend>>();
  readonly #packages: Record<string, string>;
  readonly #importModule: ModuleImporter;

  constructor(options: BackendRegistryOptions = {}) {
    for (const type of Object.keys(options.packages ?? {})) assertStorageType(type);
    for (const name of Object.values(options.packages ?? {})) assertPackageName(name);
    this.#packages = { ...options.packages };
    const from = typeof options.resolveFrom === "string" ? [options.resolveFrom] : [...(options.resolveFrom ?? [process.cwd()])];
    this.#importModule = options.importModule ?? ((specifier) => importFrom(from, specifier));
  }

  /**
   * Registers a definition directly (an adapter bundled with the application, or a test double).
   * Refused with `INCOMPATIBLE_BACKEND` when it is built for another contract version.
   */
  register(definition: BackendDefinition<unknown, StorageBackend>): this {
    assertStorageType(definition.type);
    assertContractVersion(definition);
    this.#definitions.set(definition.type, definition);
    return this;
  }

  /** The storage types this registry knows by name (registered or mapped); any other type is tried by convention. */
  types(): string[] {
    const registered = [...this.#definitions.keys()].filter((key) => !key.includes("\u0000"));
    return [...new Set([...registered, ...Object.keys(this.#packages)])].sort();
  }

  /**
   * The definition for `type`, from `packageName` when the configuration names the package
   * (`[storage] package`). Fails with `UNKNOWN_BACKEND` for a name that cannot be a storage type
   * or package; with `BACKEND_NOT_INSTALLED`, naming what to install, when the adapter package
   * or one of its dependencies (its driver) is missing; with `INVALID_CONFIG` when the package
   * exports no definition of that type; and with `INCOMPATIBLE_BACKEND` when it is built for a
   * contract version this storage-core does not support.
   */
  async resolve(type: string, packageName?: string): Promise<BackendDefinition<unknown, StorageBackend>> {
    assertStorageType(type);
    if (packageName !== undefined) assertPackageName(packageName);
    const cacheKey = packageName === undefined ? type : `${type}\u0000${packageName}`;
    const registered = this.#definitions.get(cacheKey);
    if (registered) return registered;
    const candidates =
      packageName !== undefined
        ? [packageName]
        : Object.hasOwn(this.#packages, type)
          ? [this.#packages[type] as string]
          : conventionalBackendPackages(type);
    let loaded: unknown;
    let chosen = candidates[0] as string;
    for (let i = 0; ; i++) {
      chosen = candidates[i] as string;
      try {
        loaded = await this.#importModule(chosen);
        break;
      } catch (error) {
        const missing = missingPackage(error, chosen);
        if (missing === null) throw error;
        // The convention's next spelling may be the one installed.
        if (missing === chosen && i + 1 < candidates.length) continue;
        throw this.#notInstalled(type, chosen, missing, candidates, packageName !== undefined, error);
      }
    }
    const definition = (loaded as { backendDefinition?: BackendDefinition<unknown, StorageBackend> } | null)?.backendDefinition;
    if (!definition || typeof definition.create !== "function" || typeof definition.parseConfig !== "function") {
      throw new ConfigError(
        "INVALID_CONFIG",
        `${chosen} does not export a backendDefinition (an object with type, contractVersion, parseConfig and create); is it an Egide storage adapter?`,
        { option: packageName !== undefined ? "storage.package" : "storage.type" },
      );
    }
    if (definition.type !== type) {
      throw new ConfigError(
        "INVALID_CONFIG",
        `${chosen} defines storage type ${JSON.stringify(definition.type)}, not ${JSON.stringify(type)}`,
        {
          option: "storage.type",
        },
      );
    }
    assertContractVersion({ ...definition, packageName: chosen });
    this.#definitions.set(cacheKey, definition);
    return definition;
  }

  #notInstalled(type: string, chosen: string, missing: string, candidates: string[], named: boolean, cause: unknown): ConfigError {
    // npm (7 and later) and pnpm install an adapter's driver with it, as a peer dependency;
    // when the adapter is there and its driver is not, the error names the driver.
    if (missing !== chosen) {
      return new ConfigError(
        "BACKEND_NOT_INSTALLED",
        `storage type ${JSON.stringify(type)} needs the package ${chosen}, whose dependency ${missing} is not installed; install it with: npm install ${missing}`,
        { option: "storage.type", cause },
      );
    }
    const known = this.types().filter((name) => name !== type);
    const hint = known.length > 0 ? ` (storage types known here: ${known.join(", ")})` : "";
    const what = named
      ? `the package ${chosen} (named by storage.package), which is not installed; install it with: npm install ${chosen}`
      : candidates.length > 1
        ? `an adapter package, and neither ${candidates.join(" nor ")} is installed; install it with: npm install ${candidates[0]}, or name its package with [storage] package = "…"`
        : `the package ${chosen}, which is not installed; install it with: npm install ${chosen}`;
    return new ConfigError("BACKEND_NOT_INSTALLED", `storage type ${JSON.stringify(type)} needs ${what}${hint}`, {
      option: named ? "storage.package" : "storage.type",
      cause,
    });
  }
}

/**
 * Imports `specifier` as an application in the first of `directories` that has it would: from
 * the nearest node_modules folder, walking up, that holds the package. NODE_PATH is deliberately not searched (package
 * managers' bin shims set it to their whole store, which would find adapters the application
 * never installed).
 */
async function importFrom(directories: readonly string[], specifier: string): Promise<unknown> {
  for (const directory of directories) {
    for (let dir = resolve(directory); ; dir = dirname(dir)) {
      const modules = join(dir, "node_modules");
      if (existsSync(join(modules, ...specifier.split("/"), "package.json"))) {
        const resolved = createRequire(join(modules, "__egide_resolve__.js")).resolve(specifier);
        return import(pathToFileURL(resolved).href);
      }
      if (dirname(dir) === dir) break;
    }
  }
  throw Object.assign(new Error(`Cannot find module '${specifier}' from ${directories.join(", ")}`), { code: "MODULE_NOT_FOUND" });
}

/**
 * The package to install for a module-not-found error: the package a bare specifier names
 * (`pg` for `pg/lib/client`), or the adapter itself when the missing module is one of its own
 * files. Null for any other error.
 */
function missingPackage(error: unknown, adapterPackage: string): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== "MODULE_NOT_FOUND" && code !== "ERR_MODULE_NOT_FOUND") return null;
  const message = String((error as Error).message);
  for (const lead of ["Cannot find module '", "Cannot find package '"]) {
    const start = message.indexOf(lead);
    if (start === -1) continue;
    const end = message.indexOf("'", start + lead.length);
    const specifier = end === -1 ? "" : message.slice(start + lead.length, end);
    return bareSpecifierPackage(specifier) ?? adapterPackage;
  }
  return adapterPackage;
}

/** The package name of a bare specifier (`@scope/name/sub` → `@scope/name`), or null for a path or URL. */
function bareSpecifierPackage(specifier: string): string | null {
  if (specifier === "" || specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes(":")) return null;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? (parts.length >= 2 ? `${parts[0]}/${parts[1]}` : null) : (parts[0] ?? null);
}
