import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { BackendDefinition } from "./backend-definition.js";
import type { StorageBackend } from "./storage-backend.js";
import { ConfigError } from "./config-error.js";
import { assertStorageType, conventionalBackendPackage } from "./storage-type-package.js";

/** Loads a module by specifier; lets an application import from its own location. */
export type ModuleImporter = (specifier: string) => Promise<unknown>;

/** Options of {@link BackendRegistry}. */
export interface BackendRegistryOptions {
  /**
   * How to import an adapter package. Defaults to resolving it from `resolveFrom`, so that the
   * application's node_modules is searched, not storage-core's.
   */
  importModule?: ModuleImporter;
  /** Directory to resolve adapter packages from (default: the working directory). */
  resolveFrom?: string;
  /**
   * Type → package mappings for the types whose package does not follow the convention
   * (`@egide/storage-<type>`): the server passes the adapters it ships with this way, and an
   * application its own third-party ones.
   */
  packages?: Readonly<Record<string, string>>;
}

/**
 * Maps a configured storage `type` to the {@link BackendDefinition} exported by an installed
 * adapter package, importing the package only when that type is asked for. It names no adapter
 * itself: a type's package is the one mapped in `packages`, else `@egide/storage-<type>`.
 */
export class BackendRegistry {
  readonly #definitions = new Map<string, BackendDefinition<unknown, StorageBackend>>();
  readonly #packages: Record<string, string>;
  readonly #importModule: ModuleImporter;

  constructor(options: BackendRegistryOptions = {}) {
    for (const type of Object.keys(options.packages ?? {})) assertStorageType(type);
    this.#packages = { ...options.packages };
    const from = options.resolveFrom ?? process.cwd();
    this.#importModule = options.importModule ?? ((specifier) => importFrom(from, specifier));
  }

  /** Registers a definition directly (an adapter bundled with the application, or a test double). */
  register(definition: BackendDefinition<unknown, StorageBackend>): this {
    this.#definitions.set(definition.type, definition);
    return this;
  }

  /** The storage types this registry knows by name (registered or mapped); any other type is tried by convention. */
  types(): string[] {
    return [...new Set([...this.#definitions.keys(), ...Object.keys(this.#packages)])].sort();
  }

  /**
   * The definition for `type`. Fails with `UNKNOWN_BACKEND` for a name that cannot be a storage
   * type, and with `BACKEND_NOT_INSTALLED`, naming what to install, when the adapter package or
   * one of its dependencies (its driver) is missing.
   */
  async resolve(type: string): Promise<BackendDefinition<unknown, StorageBackend>> {
    const registered = this.#definitions.get(type);
    if (registered) return registered;
    const packageName = Object.hasOwn(this.#packages, type) ? (this.#packages[type] as string) : conventionalBackendPackage(type);
    let loaded: unknown;
    try {
      loaded = await this.#importModule(packageName);
    } catch (error) {
      const missing = missingPackage(error, packageName);
      if (missing !== null) {
        // npm (7 and later) and pnpm install an adapter's driver with it, as a peer dependency;
        // when the adapter is there and its driver is not, the error names the driver.
        const what =
          missing === packageName
            ? `the package ${packageName}, which is not installed`
            : `the package ${packageName}, whose dependency ${missing} is not installed`;
        const known = this.types().filter((name) => name !== type);
        const hint = missing === packageName && known.length > 0 ? ` (storage types known here: ${known.join(", ")})` : "";
        throw new ConfigError(
          "BACKEND_NOT_INSTALLED",
          `storage type ${JSON.stringify(type)} needs ${what}; install it with: npm install ${missing}${hint}`,
          {
            option: "storage.type",
            cause: error,
          },
        );
      }
      throw error;
    }
    const definition = (loaded as { backendDefinition?: BackendDefinition<unknown, StorageBackend> }).backendDefinition;
    if (!definition || typeof definition.create !== "function" || typeof definition.parseConfig !== "function") {
      throw new ConfigError("INVALID_CONFIG", `${packageName} does not export a backendDefinition`, { option: "storage.type" });
    }
    if (definition.type !== type) {
      throw new ConfigError(
        "INVALID_CONFIG",
        `${packageName} defines storage type ${JSON.stringify(definition.type)}, not ${JSON.stringify(type)}`,
        {
          option: "storage.type",
        },
      );
    }
    this.#definitions.set(type, definition);
    return definition;
  }
}

/**
 * Imports `specifier` as the application in `directory` would: from the nearest node_modules
 * folder, walking up, that holds the package. NODE_PATH is deliberately not searched (package
 * managers' bin shims set it to their whole store, which would find adapters the application
 * never installed).
 */
async function importFrom(directory: string, specifier: string): Promise<unknown> {
  for (let dir = resolve(directory); ; dir = dirname(dir)) {
    const modules = join(dir, "node_modules");
    if (existsSync(join(modules, ...specifier.split("/"), "package.json"))) {
      const resolved = createRequire(join(modules, "__egide_resolve__.js")).resolve(specifier);
      return import(pathToFileURL(resolved).href);
    }
    if (dirname(dir) === dir) break;
  }
  throw Object.assign(new Error(`Cannot find module '${specifier}' from ${directory}`), { code: "MODULE_NOT_FOUND" });
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
