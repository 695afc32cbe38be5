import { isBuiltin } from "node:module";
import { ConfigError } from "./config-error.js";
import { describeValue } from "./contract-version.js";

/** The longest storage type name accepted (an npm package name segment, with room to spare). */
const MAX_STORAGE_TYPE_LENGTH = 64;

/** The longest npm package name (npm's own limit). */
const MAX_PACKAGE_NAME_LENGTH = 214;

/**
 * The project's own package for storage type `type`: `@egide/storage-<type>` (so
 * `type = "etcd"` loads `@egide/storage-etcd`). See {@link conventionalBackendPackages}.
 */
export function conventionalBackendPackage(type: string): string {
  assertStorageType(type);
  return `@egide/storage-${type}`;
}

/**
 * The packages tried, in order, for storage type `type` when neither the configuration
 * (`[storage] package`) nor the composition root names one: the project's own
 * `@egide/storage-<type>`, then `egide-storage-<type>`, the name anyone else can publish under
 * (as keyv's `@keyv/*` and community `keyv-*` adapters).
 */
export function conventionalBackendPackages(type: string): string[] {
  return [conventionalBackendPackage(type), `egide-storage-${type}`];
}

/**
 * Refuses, with `UNKNOWN_BACKEND`, a `[storage] package` that is not an npm package name
 * (`name` or `@scope/name`: lower-case letters, digits, `-`, `.`, `_`, `~`, not starting with
 * `.` or `_`, and not the name of a Node builtin such as `events`). Paths and URLs are refused:
 * an adapter is installed, then named.
 */
export function assertPackageName(name: string): void {
  if (typeof name !== "string") {
    throw new ConfigError("UNKNOWN_BACKEND", `must be an npm package name (a string), not ${describeValue(name)}`, {
      option: "storage.package",
    });
  }
  const scoped = name.startsWith("@");
  const slash = name.indexOf("/");
  const parts = scoped ? (slash > 1 ? [name.slice(1, slash), name.slice(slash + 1)] : []) : [name];
  // A builtin's name ("events", "fs") would resolve to the builtin, never to a package file.
  const valid = name.length <= MAX_PACKAGE_NAME_LENGTH && parts.length > 0 && parts.every(isPackageNamePart) && !isBuiltin(name);
  if (!valid) {
    throw new ConfigError(
      "UNKNOWN_BACKEND",
      `${JSON.stringify(name)} is not an npm package name (name or @scope/name; install the adapter, then name its package)`,
      { option: "storage.package" },
    );
  }
}

function isPackageNamePart(part: string): boolean {
  if (part.length === 0 || part.startsWith(".") || part.startsWith("_")) return false;
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    if (!ok) return false;
  }
  return true;
}

/**
 * Refuses a storage type that cannot be a package name segment: lower-case ASCII letters,
 * digits and `-`, starting with a letter, at most 64 characters. Checked by a plain scan
 * (the name comes from a configuration file; nothing here can backtrack).
 */
export function assertStorageType(type: string): void {
  let valid = typeof type === "string" && type.length > 0 && type.length <= MAX_STORAGE_TYPE_LENGTH;
  for (let i = 0; valid && i < type.length; i++) {
    const c = type.charCodeAt(i);
    const letter = c >= 0x61 && c <= 0x7a;
    valid = letter || (i > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x2d));
  }
  if (!valid) {
    throw new ConfigError(
      "UNKNOWN_BACKEND",
      `${describeValue(type)} is not a storage type name (lower-case letters, digits and "-", starting with a letter, at most ${MAX_STORAGE_TYPE_LENGTH} characters)`,
      { option: "storage.type" },
    );
  }
}
