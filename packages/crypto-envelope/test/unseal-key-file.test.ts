import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { readUnsealKey, writeUnsealKeyFile } from "../src/index.js";

// writeUnsealKeyFile publishes the key atomically: a temporary file in the same directory
// (0600, flushed), linked under the final name without ever overwriting, the directory flushed.

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "egide-key-file-"));
  dirs.push(dir);
  return dir;
}

const KEY = Buffer.alloc(32, 0x5a);

describe("writeUnsealKeyFile", () => {
  test("writes the whole key with mode 0600, whatever the umask, and leaves no temporary file", async () => {
    const dir = tempDir();
    const file = join(dir, "unseal.key");
    let previous: number | undefined;
    try {
      previous = process.umask(0);
    } catch {
      // Worker threads cannot change the umask; the default one is tested then.
    }
    try {
      await writeUnsealKeyFile(file, KEY);
    } finally {
      if (previous !== undefined) process.umask(previous);
    }
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toBe(`${KEY.toString("base64")}\n`);
    expect(readdirSync(dir)).toEqual(["unseal.key"]);
    expect(await readUnsealKey({ file })).toEqual(KEY);
  });

  test("an existing file or directory at the path is never overwritten (EEXIST), and no temporary file is left", async () => {
    const dir = tempDir();
    const file = join(dir, "unseal.key");
    await writeUnsealKeyFile(file, KEY);
    await expect(writeUnsealKeyFile(file, Buffer.alloc(32, 1))).rejects.toMatchObject({ code: "EEXIST" });
    expect(readFileSync(file, "utf8")).toBe(`${KEY.toString("base64")}\n`);
    const folder = join(dir, "a-directory");
    mkdirSync(folder);
    await expect(writeUnsealKeyFile(folder, KEY)).rejects.toMatchObject({ code: "EEXIST" });
    expect(readdirSync(dir).sort()).toEqual(["a-directory", "unseal.key"]);
  });

  test("a directory that does not exist fails (ENOENT) and creates nothing", async () => {
    const dir = tempDir();
    await expect(writeUnsealKeyFile(join(dir, "missing", "unseal.key"), KEY)).rejects.toMatchObject({ code: "ENOENT" });
    expect(readdirSync(dir)).toEqual([]);
  });

  test("concurrent writers to one path: exactly one wins, the others get EEXIST, the file holds the winner's key whole", async () => {
    const dir = tempDir();
    const file = join(dir, "unseal.key");
    const keys = Array.from({ length: 8 }, (_, i) => Buffer.alloc(32, i + 1));
    const results = await Promise.allSettled(keys.map((key) => writeUnsealKeyFile(file, key)));
    const won = results.flatMap((result, i) => (result.status === "fulfilled" ? [i] : []));
    expect(won).toHaveLength(1);
    for (const result of results) if (result.status === "rejected") expect(result.reason).toMatchObject({ code: "EEXIST" });
    expect(readFileSync(file, "utf8")).toBe(`${(keys[won[0] as number] as Buffer).toString("base64")}\n`);
    expect(readdirSync(dir)).toEqual(["unseal.key"]);
  });
});
