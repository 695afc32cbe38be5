import type { BackendDefinition } from "./backend-definition.js";
import type { StorageBackend } from "./storage-backend.js";
import { ConfigError } from "./config-error.js";
import { assertContractVersion, describeValue } from "./contract-version.js";
import { importInstalledPackage, PackageAbsentError } from "./import-package.js";
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
  /** Definitions loaded from a named package (`[storage] package`), by type and package. */
  readonly #named = new Map<string, BackendDefinition<unknown, StorageBackend>>();
  readonly #packages: Record<string, string>;
  readonly #importModule: ModuleImporter;

  constructor(options: BackendRegistryOptions = {}) {
    for (const type of Object.keys(options.packages ?? {})) assertStorageType(type);
    for (const name of Object.values(options.packages ?? {})) assertPackageName(name);
    this.#packages = { ...options.packages };
    const from = typeof options.resolveFrom === "string" ? [options.resolveFrom] : [...(options.resolveFrom ?? [process.cwd()])];
    this.#importModule = options.importModule ?? ((specifier) => importInstalledPackage(from, specifier));
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
    return [...new Set([...this.#definitions.keys(), ...Object.keys(this.#packages)])].sort();
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
    // A definition loaded from a package the configuration names is kept apart from those
    // known by type: naming a package never changes what the bare type resolves to.
    const cache = packageName === undefined ? this.#definitions : this.#named;
    const cacheKey = packageName === undefined ? type : `${type} ${packageName}`;
    const registered = cache.get(cacheKey);
    if (registered) return registered;
    const candidates =
      packageName !== undefined
        ? [packageName]
        : Object.hasOwn(this.#packages, type)
          ? [this.#packages[type] as string]
          : conventionalBackendPackages(type);
    let loaded: unknown;
    let chosen = candidates[0] as string;
    const option = packageName !== undefined ? "storage.package" : "storage.type";
    for (let i = 0; ; i++) {
      chosen = candidates[i] as string;
      try {
        loaded = await this.#importModule(chosen);
        break;
      } catch (error) {
        const missing = missingPackage(error, chosen);
        // Only an absent package lets the convention's next spelling be tried: one that is
        // there but broken (not built, a file missing) is reported, never shadowed.
        if (missing === chosen && i + 1 < candidates.length) continue;
        if (missing !== null) throw this.#notInstalled(type, chosen, missing, candidates, packageName !== undefined, error);
        throw new ConfigError(
          "INVALID_CONFIG",
          `${chosen} is installed but cannot be loaded (${firstLine(error)}); reinstall or rebuild it`,
          {
            option,
            cause: error,
          },
        );
      }
    }
    const definition = readDefinition(loaded, chosen, option);
    if (definition.type !== type) {
      throw new ConfigError(
        "INVALID_CONFIG",
        `${chosen} defines storage type ${describeValue(definition.type)}, not ${JSON.stringify(type)}`,
        {
          option: "storage.type",
        },
      );
    }
    assertContractVersion({ type: definition.type, contractVersion: definition.contractVersion, packageName: chosen });
    cache.set(cacheKey, definition);
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
 * The package to install for a module-not-found error: the package a bare specifier names
 * (`pg` for `pg/lib/client`), or the adapter itself when the missing module is one of its own
 * files. Null for any other error.
 */
function missingPackage(error: unknown, adapterPackage: string): string | null {
  if (error instanceof PackageAbsentError) return adapterPackage;
  let code: unknown;
  let message: string;
  try {
    code = (error as { code?: unknown } | null)?.code;
    message = String((error as Error).message);
  } catch {
    return null;
  }
  if (code !== "MODULE_NOT_FOUND" && code !== "ERR_MODULE_NOT_FOUND") return null;
  for (const lead of ["Cannot find module '", "Cannot find package '"]) {
    const start = message.indexOf(lead);
    if (start === -1) continue;
    const end = message.indexOf("'", start + lead.length);
    // A bare specifier names a package to install (the adapter, or its driver); a path is a
    // file missing from an installed package: broken, not absent.
    return bareSpecifierPackage(end === -1 ? "" : message.slice(start + lead.length, end));
  }
  return null;
}

/**
 * The `backendDefinition` a loaded module exports, its members read once: a module whose
 * export is not a definition (or whose getters throw) is an `INVALID_CONFIG` naming the
 * package, never a raw error.
 */
function readDefinition(loaded: unknown, packageName: string, option: string): BackendDefinition<unknown, StorageBackend> {
  let definition: BackendDefinition<unknown, StorageBackend> | undefined;
  try {
    const exported = (loaded as { backendDefinition?: unknown } | null)?.backendDefinition as
      | BackendDefinition<unknown, StorageBackend>
      | undefined;
    const { create, parseConfig, findMissing } = exported ?? {};
    if (exported && typeof exported === "object" && typeof create === "function" && typeof parseConfig === "function") {
      // A snapshot: what was checked is what runs.
      definition = Object.freeze({
        type: exported.type,
        packageName: exported.packageName,
        contractVersion: exported.contractVersion,
        parseConfig: parseConfig.bind(exported),
        create: create.bind(exported),
        ...(typeof findMissing === "function" ? { findMissing: findMissing.bind(exported) } : {}),
      });
    }
  } catch {
    definition = undefined;
  }
  if (!definition) {
    throw new ConfigError(
      "INVALID_CONFIG",
      `${packageName} does not export a backendDefinition (an object with type, contractVersion, parseConfig and create); is it an Egide storage adapter?`,
      { option },
    );
  }
  return definition;
}

/** The first line of an error's message, for a one-line report (the error itself goes in `cause`). */
function firstLine(error: unknown): string {
  try {
    return String(error instanceof Error ? error.message : error).split("\n")[0] ?? "";
  } catch {
    return "an error that cannot be shown";
  }
}

/** The package name of a bare specifier (`@scope/name/sub` → `@scope/name`), or null for a path or URL. */
function bareSpecifierPackage(specifier: string): string | null {
  if (specifier === "" || specifier.startsWith(".") || specifier.startsWith("/") || specifier.includes(":")) return null;
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? (parts.length >= 2 ? `${parts[0]}/${parts[1]}` : null) : (parts[0] ?? null);
}
