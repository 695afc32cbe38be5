import { randomBytes } from "node:crypto";
import { link, lstat, open, readFile, rename, stat, unlink } from "node:fs/promises";
import type { FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { KEY_BYTES } from "./aes-gcm.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import { decodeShare } from "./unseal-shares.js";

/**
 * Where an auto-unsealing server finds its unseal key (the single share of a 1-of-1 seal),
 * as base64 or hex: a file readable by its owner only, or an environment variable.
 */
export type UnsealKeySource = { file: string } | { env: string };

/**
 * Reads the unseal key from `source`. A missing file or variable, a file that group or others
 * can read, or content that is not a 32-byte key in base64 or hex fails with
 * `UNSEAL_KEY_SOURCE`; the message names the file or variable, never its content.
 */
export async function readUnsealKey(source: UnsealKeySource): Promise<Buffer> {
  if ("file" in source) {
    let content: Buffer;
    try {
      const info = await stat(source.file);
      if (!info.isFile()) throw new SealError(SealErrorCode.UNSEAL_KEY_SOURCE, `unseal key file ${source.file} is not a regular file`);
      // Like ssh with private keys: a key file others can read is refused, not used.
      if ((info.mode & 0o077) !== 0) {
        throw new SealError(
          SealErrorCode.UNSEAL_KEY_SOURCE,
          `unseal key file ${source.file} is accessible by group or others (mode ${(info.mode & 0o777).toString(8)}); run chmod 600 on it`,
        );
      }
      content = await readFile(source.file);
    } catch (error) {
      if (SealError.isInstance(error)) throw error;
      throw new SealError(
        SealErrorCode.UNSEAL_KEY_SOURCE,
        `cannot read unseal key file ${source.file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
      );
    }
    try {
      return decodeKey(content.toString("utf8").trim(), `file ${source.file}`);
    } finally {
      content.fill(0);
    }
  }
  const value = process.env[source.env];
  if (value === undefined || value === "") {
    throw new SealError(SealErrorCode.UNSEAL_KEY_SOURCE, `environment variable ${source.env} holds no unseal key`);
  }
  return decodeKey(value.trim(), `environment variable ${source.env}`);
}

/**
 * Writes `unsealKey` (base64) to a new file readable by its owner only, atomically: the key
 * goes to a temporary file in the same directory (mode 0600, created exclusively), which is
 * flushed to disk and then published under `path` in one step, and the directory is flushed
 * too. So `path` either does not exist or holds the whole key, even after a crash or a full
 * disk; a failed write leaves no file behind. Refuses to overwrite an existing file (`EEXIST`),
 * so a second initialisation cannot destroy the key of the first.
 */
export async function writeUnsealKeyFile(path: string, unsealKey: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  const content = Buffer.from(`${Buffer.from(unsealKey).toString("base64")}\n`, "utf8");
  try {
    const handle = await open(temp, "wx", 0o600);
    try {
      // The creation mode passes through the umask, which can only remove bits; say it again.
      await handle.chmod(0o600);
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await publishWithoutOverwrite(temp, path);
  } finally {
    content.fill(0);
    await unlink(temp).catch(() => undefined);
  }
  await syncDirectory(dir);
}

/**
 * Gives the complete file `temp` the name `path`, failing with `EEXIST` when `path` exists. A
 * hard link does both atomically; where the file system has none, an existence check and a
 * rename (which could overwrite a file created in between) are the fallback.
 */
async function publishWithoutOverwrite(temp: string, path: string): Promise<void> {
  try {
    await link(temp, path);
    return;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== "EPERM" && code !== "ENOTSUP" && code !== "EOPNOTSUPP" && code !== "ENOSYS" && code !== "EMLINK") throw error;
  }
  const existing = await lstat(path).then(
    () => true,
    (error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return false;
      throw error;
    },
  );
  if (existing) throw Object.assign(new Error(`EEXIST: file already exists, ${path}`), { code: "EEXIST", path });
  await rename(temp, path);
}

/** Flushes a directory's entries (the new name) to disk; a platform that cannot is skipped. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle;
  try {
    handle = await open(dir, "r");
  } catch (error) {
    if (isUnsupportedDirectorySync(error)) return;
    throw error;
  }
  try {
    await handle.sync();
  } catch (error) {
    if (!isUnsupportedDirectorySync(error)) throw error;
  } finally {
    await handle.close();
  }
}

function isUnsupportedDirectorySync(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EISDIR" || code === "EPERM" || code === "EINVAL" || code === "EBADF" || code === "ENOTSUP";
}

function decodeKey(text: string, where: string): Buffer {
  try {
    return decodeShare(text, KEY_BYTES);
  } catch (cause) {
    throw new SealError(SealErrorCode.UNSEAL_KEY_SOURCE, `${where} does not hold a 32-byte unseal key in base64 or hex`, { cause });
  }
}
