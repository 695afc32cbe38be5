import { open, readFile, stat } from "node:fs/promises";
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
      throw new SealError(SealErrorCode.UNSEAL_KEY_SOURCE, `cannot read unseal key file ${source.file}: ${(error as NodeJS.ErrnoException).code ?? "error"}`);
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
 * Writes `unsealKey` (base64) to a new file readable by its owner only. Refuses to overwrite
 * an existing file, so a second initialisation cannot destroy the key of the first.
 */
export async function writeUnsealKeyFile(path: string, unsealKey: Uint8Array): Promise<void> {
  const handle = await open(path, "wx", 0o600);
  try {
    await handle.writeFile(`${Buffer.from(unsealKey).toString("base64")}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function decodeKey(text: string, where: string): Buffer {
  try {
    return decodeShare(text, KEY_BYTES);
  } catch (cause) {
    throw new SealError(SealErrorCode.UNSEAL_KEY_SOURCE, `${where} does not hold a 32-byte unseal key in base64 or hex`, { cause });
  }
}
