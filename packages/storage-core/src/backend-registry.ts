import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { BackendDefinition } from "./backend-definition.js";
import { ConfigError } from "./config-error.js";

/** The adapter packages Egide ships, by storage type. */
export const KNOWN_BACKEND_PACKAGES: Readonly<Record<string, string>> = {
  sqlite: "@egide/storage-sqlite",
  postgresql: "@egide/storage-postgres",
};

/** Driver packages each shipped adapter needs beside it (its peer dependencies). */
const DRIVER_PACKAGES: Readonly<Record<string, string>> = {
  sqlite: "better-sqlite3",
  postgresql: "pg",
};

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
  /** Extra or overriding type → package mappings (for third-party adapters). */
  packages?: Record<string, string>;
}

/**
 * Maps a configured storage `type` to the {@link BackendDefinition} exported by an installed
 * adapter package, importing the package only when that type is asked for.
 */
export class BackendRegistry {
  readonly #definitions = new Map<string, BackendDefinition<any, any>>();
  readonly #packages: Record<string, string>;
  readonly #importModule: ModuleImporter;

  constructor(options: BackendRegistryOptions = {}) {
    this.#packages = { ...KNOWN_BACKEND_PACKAGES, ...options.packages };
    const from = options.resolveFrom ?? process.cwd();
    this.#importModule = options.importModule ?? ((specifier) => importFrom(from, specifier));
  }

  /** Registers a definition directly (an adapter bundled with the application, or a test double). */
  register(definition: BackendDefinition<any, any>): this {
    this.#definitions.set(definition.type, definition);
    return this;
  }

  /** The storage types this registry can try to load. */
  types(): string[] {
    return [...new Set([...this.#definitions.keys(), ...Object.keys(this.#packages)])].sort();
  }

  /**
   * The definition for `type`. Fails with `UNKNOWN_BACKEND` for a type nobody maps, and with
   * `BACKEND_NOT_INSTALLED`, naming the package to install, when the adapter is missing.
   */
  async resolve(type: string): Promise<BackendDefinition<any, any>> {
    const registered = this.#definitions.get(type);
    if (registered) return registered;
    const packageName = this.#packages[type];
    if (packageName === undefined) {
      throw new ConfigError("UNKNOWN_BACKEND", `unknown storage type ${JSON.stringify(type)}; known types: ${this.types().join(", ")}`, {
        option: "storage.type",
      });
    }
    let loaded: unknown;
    try {
      loaded = await this.#importModule(packageName);
    } catch (error) {
      const missing = missingModule(error);
      if (missing !== null) {
        const driver = DRIVER_PACKAGES[type];
        const install = `npm install ${packageName}${driver ? ` ${driver}` : ""}`;
        const what = missing === packageName ? `the package ${packageName}, which is not installed` : `the package ${packageName}, whose dependency ${missing} is not installed`;
        throw new ConfigError("BACKEND_NOT_INSTALLED", `storage type ${JSON.stringify(type)} needs ${what}; install it with: ${install}`, {
          option: "storage.type",
          cause: error,
        });
      }
      throw error;
    }
    const definition = (loaded as { backendDefinition?: BackendDefinition<any, any> }).backendDefinition;
    if (!definition || typeof definition.create !== "function" || typeof definition.parseConfig !== "function") {
      throw new ConfigError("INVALID_CONFIG", `${packageName} does not export a backendDefinition`, { option: "storage.type" });
    }
    if (definition.type !== type) {
      throw new ConfigError("INVALID_CONFIG", `${packageName} defines storage type ${JSON.stringify(definition.type)}, not ${JSON.stringify(type)}`, {
        option: "storage.type",
      });
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

/** The name of the package a module-not-found error is about, or null for any other error. */
function missingModule(error: unknown): string | null {
  const code = (error as { code?: unknown } | null)?.code;
  if (code !== "MODULE_NOT_FOUND" && code !== "ERR_MODULE_NOT_FOUND") return null;
  const match = /(?:Cannot find (?:module|package)) '([^']+)'/.exec(String((error as Error).message));
  return match?.[1] ?? "an unknown module";
}
