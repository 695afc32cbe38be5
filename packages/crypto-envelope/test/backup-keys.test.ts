import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, describe, expect, test } from "vitest";
import { KEYRING_KEY, SealErrorCode, SealManager, barrier } from "../src/index.js";
import { barrierKeyAccess } from "../src/barrier-key-access.js";
import { openSealedStack } from "./support/sealed-stack.js";

const opened: StorageBackend[] = [];

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close();
});

async function stack() {
  const result = await openSealedStack();
  opened.push(result.raw);
  return result;
}

const SALT_A = Buffer.alloc(32, 0xa1);
const SALT_B = Buffer.alloc(32, 0xb2);

describe("installationId", () => {
  test("is 16 bytes, stable across seal, unseal, rotation and another process", async () => {
    const { raw, seal, shares } = await stack();
    const id = seal.installationId();
    expect(id).toHaveLength(16);
    await seal.rotate();
    expect(seal.installationId().equals(id)).toBe(true);
    seal.seal();
    await seal.unseal(shares[0] as Buffer);
    expect(seal.installationId().equals(id)).toBe(true);
    const other = await SealManager.open(raw);
    await other.unseal(shares[0] as Buffer);
    expect(other.installationId().equals(id)).toBe(true);
  });

  test("differs between two installations", async () => {
    const one = await stack();
    const two = await stack();
    expect(one.seal.installationId().equals(two.seal.installationId())).toBe(false);
  });

  test("is refused while sealed and before initialisation", async () => {
    const { seal } = await stack();
    seal.seal();
    expect(() => seal.installationId()).toThrow(expect.objectContaining({ code: SealErrorCode.SEALED }));
    const raw = SqliteBackend.open({ path: ":memory:" });
    opened.push(raw);
    const blank = await SealManager.open(raw);
    expect(() => blank.installationId()).toThrow(expect.objectContaining({ code: SealErrorCode.SEALED }));
  });
});

describe("backupKeys", () => {
  test("gives two different 32-byte keys, the same for the same salt, others for another salt", async () => {
    const { seal } = await stack();
    const a1 = seal.backupKeys(SALT_A);
    const a2 = seal.backupKeys(SALT_A);
    const b = seal.backupKeys(SALT_B);
    expect(a1.encryptionKey).toHaveLength(32);
    expect(a1.macKey).toHaveLength(32);
    expect(a1.encryptionKey.equals(a1.macKey)).toBe(false);
    expect(a1.encryptionKey.equals(a2.encryptionKey)).toBe(true);
    expect(a1.macKey.equals(a2.macKey)).toBe(true);
    expect(a1.encryptionKey.equals(b.encryptionKey)).toBe(false);
    expect(a1.macKey.equals(b.macKey)).toBe(false);
  });

  test("differs between installations for the same salt, and is refused while sealed", async () => {
    const one = await stack();
    const two = await stack();
    expect(one.seal.backupKeys(SALT_A).encryptionKey.equals(two.seal.backupKeys(SALT_A).encryptionKey)).toBe(false);
    one.seal.seal();
    expect(() => one.seal.backupKeys(SALT_A)).toThrow(expect.objectContaining({ code: SealErrorCode.SEALED }));
  });
});

describe("rotateAfterRestore", () => {
  test("activates a version past every known one, with a generation other processes accept", async () => {
    const { raw, seal, shares, barrier: store } = await stack();
    await store.put("app/a", Buffer.from("before the backup"));
    const backupKeyring = (await raw.get(KEYRING_KEY)) as Buffer;
    await seal.rotate();
    await seal.rotate();
    expect(seal.keyStatus().term).toBe(3);
    // Another process that has seen the newest keyring (generation included).
    const other = await SealManager.open(raw);
    await other.unseal(shares[0] as Buffer);
    const otherStore = barrier(raw, other);

    let version = 0;
    await raw.transaction(async (tx) => {
      await tx.put(KEYRING_KEY, backupKeyring); // what a restore writes
      version = await seal.rotateAfterRestore(tx);
    });
    expect(version).toBeGreaterThan(3);
    seal.seal();

    const fresh = await SealManager.open(raw);
    await fresh.unseal(shares[0] as Buffer);
    expect(fresh.keyStatus().term).toBe(version);
    const freshStore = barrier(raw, fresh);
    expect((await freshStore.get("app/a"))?.toString()).toBe("before the backup");
    await freshStore.put("app/b", Buffer.from("after the restore"));
    // The other process meets an unknown version, reloads, and accepts the keyring.
    expect((await otherStore.get("app/b"))?.toString()).toBe("after the restore");
    expect(other.keyStatus().term).toBe(version);
  });

  test("two restores of the same backup choose different versions", async () => {
    const { raw, seal } = await stack();
    const backupKeyring = (await raw.get(KEYRING_KEY)) as Buffer;
    const versions = new Set<number>();
    for (let i = 0; i < 3; i++) {
      await raw.transaction(async (tx) => {
        await tx.put(KEYRING_KEY, backupKeyring);
        versions.add(await seal.rotateAfterRestore(tx));
      });
    }
    expect(versions.size).toBe(3);
  });

  test("is refused while sealed", async () => {
    const { raw, seal } = await stack();
    seal.seal();
    await expect(raw.transaction((tx) => seal.rotateAfterRestore(tx))).rejects.toMatchObject({ code: SealErrorCode.SEALED });
  });
});

describe("read-only seal manager", () => {
  test("unseals without writing the storage, gives the same keys, and refuses to encrypt", async () => {
    const { raw, seal, shares } = await stack();
    const keyringBefore = (await raw.get(KEYRING_KEY)) as Buffer;
    const reader = await SealManager.open(raw, { readOnly: true });
    await reader.unseal(shares[0] as Buffer);
    expect(reader.sealed).toBe(false);
    expect(((await raw.get(KEYRING_KEY)) as Buffer).equals(keyringBefore)).toBe(true);
    expect(reader.installationId().equals(seal.installationId())).toBe(true);
    expect(reader.backupKeys(SALT_A).macKey.equals(seal.backupKeys(SALT_A).macKey)).toBe(true);
    expect(() => barrierKeyAccess(reader).encryptValue("app/x", Buffer.from("x"))).toThrow(expect.objectContaining({ code: "READ_ONLY" }));
    const view = barrier(raw, reader);
    await expect(view.put("app/x", Buffer.from("x"))).rejects.toMatchObject({ code: "READ_ONLY" });
  });
});

describe("rotateAfterRestore with the target's previous keyring", () => {
  test("counts the previous keyring's versions and generation as seen", async () => {
    const { raw, shares } = await stack();
    const backupKeyring = (await raw.get(KEYRING_KEY)) as Buffer;
    const writer = await SealManager.open(raw);
    await writer.unseal(shares[0] as Buffer);
    for (let i = 0; i < 4; i++) await writer.rotate();
    const previous = (await raw.get(KEYRING_KEY)) as Buffer;
    // A manager that only knows the old keyring (as one opened over a backup's own records).
    const restorer = await SealManager.open(raw, { readOnly: true });
    await raw.transaction(async (tx) => {
      await tx.put(KEYRING_KEY, backupKeyring);
    });
    await restorer.unseal(shares[0] as Buffer);
    let version = 0;
    await raw.transaction(async (tx) => {
      version = await restorer.rotateAfterRestore(tx, { previousKeyring: previous });
    });
    expect(version).toBeGreaterThan(5);
    // The writer, which saw the newer generation, accepts the result.
    const check = await SealManager.open(raw);
    await check.unseal(shares[0] as Buffer);
    expect(check.keyStatus().term).toBe(version);
    await writer.rotate();
    expect(writer.keyStatus().term).toBe(version + 1);
  });
});
