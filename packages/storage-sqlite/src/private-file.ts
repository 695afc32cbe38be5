import { chmodSync, closeSync, fchmodSync, openSync, statSync } from "node:fs";
import { dirname } from "node:path";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { SQLITE_TYPE } from "./sqlite-type.js";
import { SqliteFilePermissionError } from "./sqlite-errors.js";

/** The mode of a file only its owner may read and write. */
export const PRIVATE_FILE_MODE = 0o600;

/** The permission bits of group and others. */
const GROUP_AND_OTHER_BITS = 0o077;

/**
 * The files SQLite keeps beside a database, named by the suffix added to its path: the WAL,
 * the WAL index (shared memory), and the rollback journal. They hold database pages too.
 */
export const SQLITE_COMPANION_SUFFIXES = ["-wal", "-shm", "-journal"] as const;

/** How often {@link preparePrivateDatabaseFile} tries again when the file vanishes meanwhile. */
const CREATE_ATTEMPTS = 3;

/**
 * Creates `path` as an empty file with mode 0600, whatever the process umask. Returns false,
 * changing nothing, when something already exists at `path` (even a dangling symbolic link):
 * the exclusive create (`O_EXCL`) never opens, let alone truncates, an existing file, so it is
 * safe against another process creating the same file at the same moment. Other failures (a
 * missing or unwritable directory) are thrown as the `fs` error.
 */
export function createPrivateFile(path: string): boolean {
  let fd: number;
  try {
    fd = openSync(path, "wx", PRIVATE_FILE_MODE);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw error;
  }
  try {
    // The umask can only take bits away from 0600, so the file was never readable by others;
    // set the mode exactly anyway, since a umask such as 0277 would leave the owner unable to write.
    fchmodSync(fd, PRIVATE_FILE_MODE);
  } finally {
    closeSync(fd);
  }
  return true;
}

/**
 * Removes every group and other permission bit of the regular file at `path` (0644 becomes
 * 0600), following symbolic links. Returns false when nothing exists at `path`; leaves
 * anything but a regular file alone (SQLite reports what it makes of a directory). When the
 * bits cannot be removed (the process is not the file's owner, a read-only file system) it
 * throws {@link SqliteFilePermissionError} rather than going on with a file others can read.
 */
export function restrictToOwner(path: string): boolean {
  let mode: number;
  try {
    const stats = statSync(path);
    if (!stats.isFile()) return true;
    mode = stats.mode & 0o7777;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
  if ((mode & GROUP_AND_OTHER_BITS) === 0) return true;
  try {
    chmodSync(path, mode & ~GROUP_AND_OTHER_BITS);
  } catch (error) {
    throw new SqliteFilePermissionError(path, mode, error);
  }
  return true;
}

/**
 * Makes the database file at `path` private to the process's user before SQLite opens it:
 * creates it with mode 0600 when it does not exist, or else removes group and other
 * permissions from it; then does the same for the `-wal`, `-shm` and `-journal` files that
 * exist beside it. SQLite's unix VFS creates those companions later with the mode of the
 * database file, so they stay private too.
 *
 * The directory is neither created nor changed: a missing directory is an UNAVAILABLE
 * error saying so, and so is a file that exists but cannot be found (a dangling symbolic link).
 */
export function preparePrivateDatabaseFile(path: string): void {
  for (let attempt = 1; ; attempt++) {
    // Create first and look afterwards: checking for the file before creating it would race
    // with another process opening the same new database.
    if (createOrMissingDirectory(path) || restrictToOwner(path)) break;
    // Something existed at `path` for the create but not for the stat: the file was removed
    // meanwhile, or `path` is a symbolic link to a missing file (which SQLite would create
    // with the umask's permissions).
    if (attempt === CREATE_ATTEMPTS) {
      throw new StorageError(
        StorageErrorCode.UNAVAILABLE,
        `database path ${path} exists but points to no file (a dangling symbolic link?); create its target or point path at the file itself`,
        { backend: SQLITE_TYPE, retryable: false },
      );
    }
  }
  for (const suffix of SQLITE_COMPANION_SUFFIXES) restrictToOwner(path + suffix);
}

/** {@link createPrivateFile}, with a missing directory reported as such. */
function createOrMissingDirectory(path: string): boolean {
  try {
    return createPrivateFile(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    throw new StorageError(
      StorageErrorCode.UNAVAILABLE,
      `opening ${path} failed: directory ${dirname(path)} does not exist; create it, readable by Egide's user only (mode 0700)`,
      { backend: SQLITE_TYPE, cause: error, retryable: false },
    );
  }
}
