/**
 * The storage adapters the server ships with, by `[storage] type`. The server passes them to
 * storage-core's `BackendRegistry`, which names no adapter itself; any other type resolves by
 * the convention `@egide/storage-<type>`. Each is an optional peer dependency of the server:
 * an installation holds only the one it uses.
 */
export const SHIPPED_STORAGE_PACKAGES: Readonly<Record<string, string>> = Object.freeze({
  sqlite: "@egide/storage-sqlite",
  postgresql: "@egide/storage-postgres",
});
