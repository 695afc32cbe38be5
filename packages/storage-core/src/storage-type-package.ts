import { ConfigError } from "./config-error.js";

/** The longest storage type name accepted (an npm package name segment, with room to spare). */
const MAX_STORAGE_TYPE_LENGTH = 64;

/**
 * The package that provides storage type `type` when nobody maps it to another one:
 * `@egide/storage-<type>` (so `type = "etcd"` loads `@egide/storage-etcd`). The composition
 * root (the server) passes its own mappings for the types whose package is named otherwise.
 */
export function conventionalBackendPackage(type: string): string {
  assertStorageType(type);
  return `@egide/storage-${type}`;
}

/**
 * Refuses a storage type that cannot be a package name segment: lower-case ASCII letters,
 * digits and `-`, starting with a letter, at most 64 characters. Checked by a plain scan
 * (the name comes from a configuration file; nothing here can backtrack).
 */
export function assertStorageType(type: string): void {
  let valid = type.length > 0 && type.length <= MAX_STORAGE_TYPE_LENGTH;
  for (let i = 0; valid && i < type.length; i++) {
    const c = type.charCodeAt(i);
    const letter = c >= 0x61 && c <= 0x7a;
    valid = letter || (i > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x2d));
  }
  if (!valid) {
    throw new ConfigError(
      "UNKNOWN_BACKEND",
      `${JSON.stringify(type)} is not a storage type name (lower-case letters, digits and "-", starting with a letter, at most ${MAX_STORAGE_TYPE_LENGTH} characters)`,
      { option: "storage.type" },
    );
  }
}
