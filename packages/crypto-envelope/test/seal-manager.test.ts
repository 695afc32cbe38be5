import { StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, describe, expect, test } from "vitest";
import { KEYRING_KEY, REWRAP_PROGRESS_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY, SealErrorCode, SealManager, barrier } from "../src/index.js";
import { barrierKeyAccess } from "../src/barrier-key-access.js";
import { openSealedStack } from "./support/sealed-stack.js";
import type { SealedStack } from "./support/sealed-stack.js";
import { expectRejectedStorageError as expectStorageError, expectSealError } from "./support/expect-errors.js";

// ---- helpers ---------------------------------------------------------------------------------

const opened: StorageBackend[] = [];

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close();
});

async function stack(options: Parameters<typeof openSealedStack>[0] = {}): Promise<SealedStack> {
  const result = await openSealedStack(options);
  opened.push(result.raw);
  return result;
}

async function collect(iterable: AsyncIterable<{ key: string; value: Buffer }>): Promise<Array<{ key: string; value: Buffer }>> {
  const entries: Array<{ key: string; value: Buffer }> = [];
  for await (const entry of iterable) entries.push(entry);
  return entries;
}

/** Every barrier data operation, each as a thunk. */
function dataOperations(secured: StorageBackend): Array<[string, () => Promise<unknown>]> {
  return [
    ["get", () => secured.get("a/b")],
    ["put", () => secured.put("a/new", Buffer.from("x"))],
    ["delete", () => secured.delete("a/b")],
    ["exists", () => secured.exists("a/b")],
    ["list", () => secured.list("")],
    ["list a/", () => secured.list("a/")],
    ["listPage", () => secured.listPage("", "", 10)],
    ["scan", () => collect(secured.scan(""))],
    ["scan a/", () => collect(secured.scan("a/"))],
    ["transaction", () => secured.transaction(async (tx) => tx.get("a/b"))],
    ["read-only transaction", () => secured.transaction(async (tx) => tx.list(""), { readOnly: true })],
  ];
}

// ---- sealed barrier --------------------------------------------------------------------------

describe("the barrier while sealed", () => {
  test("every data operation fails with SEALED after seal(); health() still works; unseal restores access", async () => {
    const { raw, seal, barrier: secured, shares } = await stack({ scheme: { shares: 3, threshold: 2 } });
    await secured.put("a/b", Buffer.from("value"));
    await secured.put("c", Buffer.from("other"));
    seal.seal();
    expect(seal.sealed).toBe(true);

    let calledInsideTransaction = false;
    for (const [name, run] of dataOperations(secured)) await expectStorageError(run, StorageErrorCode.SEALED, name);
    await expectStorageError(
      () =>
        secured.transaction(async () => {
          calledInsideTransaction = true;
        }),
      StorageErrorCode.SEALED,
      "transaction callback",
    );
    expect(calledInsideTransaction).toBe(false);

    // Nothing was written or deleted by the refused operations.
    expect(await raw.exists("a/new")).toBe(false);
    expect(await raw.exists("a/b")).toBe(true);

    const health = await secured.health();
    expect(health.status).toBe("healthy");

    // The seal manager's own key operations are refused too.
    await expectStorageError(() => seal.keyStatus(), StorageErrorCode.SEALED, "keyStatus");
    await expectStorageError(() => seal.rotate(), StorageErrorCode.SEALED, "rotate");
    await expectStorageError(() => seal.rewrap(), StorageErrorCode.SEALED, "rewrap");
    await expectStorageError(() => seal.retire(1), StorageErrorCode.SEALED, "retire");
    await expectStorageError(() => barrierKeyAccess(seal).assertUnsealed(), StorageErrorCode.SEALED, "assertUnsealed");

    // Sealing twice is harmless.
    seal.seal();
    await seal.unseal(shares[1] as Buffer);
    await seal.unseal(shares[2] as Buffer);
    expect(await secured.get("a/b")).toEqual(Buffer.from("value"));
    expect(await secured.list("")).toEqual(["a/", "c"]);
  });

  test("before the first unseal (and before init) the barrier refuses every data operation with SEALED", async () => {
    const raw = SqliteBackend.open({ path: ":memory:" });
    opened.push(raw);
    const seal = await SealManager.open(raw);
    const secured = barrier(raw, seal);
    for (const [name, run] of dataOperations(secured)) await expectStorageError(run, StorageErrorCode.SEALED, `uninitialised ${name}`);
    await seal.initialize({ shares: 1, threshold: 1 });
    for (const [name, run] of dataOperations(secured)) await expectStorageError(run, StorageErrorCode.SEALED, `initialised ${name}`);
    expect((await secured.health()).status).toBe("healthy");
  });

  test("sealing in the middle of a transaction makes its next operation fail with SEALED and rolls it back", async () => {
    const { raw, seal, barrier: secured } = await stack();
    await secured.put("kept", Buffer.from("before"));
    await expectStorageError(
      () =>
        secured.transaction(async (tx) => {
          await tx.put("written-in-tx", Buffer.from("x"));
          seal.seal();
          await tx.put("kept", Buffer.from("after"));
        }),
      StorageErrorCode.SEALED,
      "put after seal",
    );
    expect(await raw.exists("written-in-tx")).toBe(false);
  });

  test("sealing during a pending get makes it fail with SEALED rather than decrypt", async () => {
    const { seal, barrier: secured } = await stack();
    await secured.put("k", Buffer.from("v"));
    const pending = secured.get("k");
    seal.seal();
    await expectStorageError(() => pending, StorageErrorCode.SEALED, "pending get");
  });
});

// ---- reserved keys ---------------------------------------------------------------------------

describe("the barrier's own records under .egide/", () => {
  const reservedKeys = [KEYRING_KEY, SEAL_CONFIG_KEY, ROOT_KEY_KEY, REWRAP_PROGRESS_KEY, ".egide/anything", ".egide/a/b"];

  test("every barrier operation on a key or prefix under .egide/ fails with INVALID_KEY and changes nothing", async () => {
    const { raw, barrier: secured } = await stack();
    const before = await collect(raw.scan(".egide/"));
    expect(before.map((e) => e.key)).toEqual([KEYRING_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY]);

    for (const key of reservedKeys) {
      await expectStorageError(() => secured.get(key), StorageErrorCode.INVALID_KEY, `get ${key}`);
      await expectStorageError(() => secured.put(key, Buffer.from("overwrite")), StorageErrorCode.INVALID_KEY, `put ${key}`);
      await expectStorageError(() => secured.delete(key), StorageErrorCode.INVALID_KEY, `delete ${key}`);
      await expectStorageError(() => secured.exists(key), StorageErrorCode.INVALID_KEY, `exists ${key}`);
    }
    for (const prefix of [".egide/", ".egide/a/"]) {
      await expectStorageError(() => secured.list(prefix), StorageErrorCode.INVALID_KEY, `list ${prefix}`);
      await expectStorageError(() => secured.listPage(prefix, "", 10), StorageErrorCode.INVALID_KEY, `listPage ${prefix}`);
      await expectStorageError(() => collect(secured.scan(prefix)), StorageErrorCode.INVALID_KEY, `scan ${prefix}`);
    }
    // Inside a transaction too, and the transaction rolls back.
    const txOps: Array<[string, (tx: Parameters<Parameters<StorageBackend["transaction"]>[0]>[0]) => Promise<unknown>]> = [
      ["tx.get", (tx) => tx.get(KEYRING_KEY)],
      ["tx.put", (tx) => tx.put(KEYRING_KEY, Buffer.from("overwrite"))],
      ["tx.delete", (tx) => tx.delete(SEAL_CONFIG_KEY)],
      ["tx.exists", (tx) => tx.exists(ROOT_KEY_KEY)],
      ["tx.list", (tx) => tx.list(".egide/")],
      ["tx.listPage", (tx) => tx.listPage(".egide/", "", 5)],
    ];
    for (const [name, op] of txOps) {
      await expectStorageError(
        () =>
          secured.transaction(async (tx) => {
            await tx.put("tx-marker", Buffer.from("m"));
            await op(tx);
          }),
        StorageErrorCode.INVALID_KEY,
        name,
      );
    }
    expect(await raw.exists("tx-marker")).toBe(false);
    expect(await raw.exists(".egide/anything")).toBe(false);
    expect(await collect(raw.scan(".egide/"))).toEqual(before);
  });

  test("list, listPage and scan through the barrier never show .egide/, while the raw backend does", async () => {
    const { raw, barrier: secured, seal } = await stack();
    // Keys around ".egide/" in byte order: '-' < '.' < '0' < 'a'; ".eg" and ".egide" are ordinary keys.
    const keys = ["-a", ".eg", ".egide", ".x/y", "0", "a", "b/c"];
    for (const key of keys) await secured.put(key, Buffer.from(`value of ${key}`));
    await seal.rotate();
    await seal.rewrap(); // leaves a rewrap progress record under .egide/ as well

    const rawList = await raw.list("");
    expect(rawList).toContain(".egide/");
    const visible = await secured.list("");
    expect(visible).toEqual(["-a", ".eg", ".egide", ".x/", "0", "a", "b/"]);

    const rawScan = (await collect(raw.scan(""))).map((e) => e.key);
    expect(rawScan.filter((k) => k.startsWith(".egide/")).sort()).toEqual(
      [KEYRING_KEY, REWRAP_PROGRESS_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY].sort(),
    );
    const scanned = await collect(secured.scan(""));
    expect(scanned.map((e) => e.key)).toEqual(keys);
    for (const entry of scanned) expect(entry.value.toString()).toBe(`value of ${entry.key}`);

    // Prefixes that are prefixes of ".egide/" hide it as well.
    expect(await raw.list(".")).toContain("egide/");
    expect(await secured.list(".")).toEqual(["eg", "egide", "x/"]);
    expect(await secured.list(".egide")).toEqual([]);
    expect((await collect(secured.scan("."))).map((e) => e.key)).toEqual([".eg", ".egide", ".x/y"]);
    expect((await collect(secured.scan(".egide"))).map((e) => e.key)).toEqual([".egide"]);

    // Paging in any page size walks the same visible listing, with full pages where possible.
    for (const limit of [1, 2, 3, 4, 5, 100]) {
      const walked: string[] = [];
      let after = "";
      for (let pages = 0; pages < 50; pages++) {
        const page = await secured.listPage("", after, limit);
        for (const entry of page) expect(entry.startsWith(".egide/")).toBe(false);
        walked.push(...page);
        if (page.length < limit) break;
        after = page[page.length - 1] as string;
      }
      expect(walked, `limit ${limit}`).toEqual(visible);
    }
    // The page that straddles ".egide/" is topped up to its full size.
    expect(await raw.listPage("", "", 4)).toEqual(["-a", ".eg", ".egide", ".egide/"]);
    expect(await secured.listPage("", "", 4)).toEqual(["-a", ".eg", ".egide", ".x/"]);
    expect(await secured.listPage("", ".egide", 1)).toEqual([".x/"]);

    // Inside a transaction the listing is filtered the same way.
    const inTx = await secured.transaction(async (tx) => [await tx.list(""), await tx.listPage("", "", 4)], { readOnly: true });
    expect(inTx).toEqual([visible, ["-a", ".eg", ".egide", ".x/"]]);
  });
});

// ---- options ---------------------------------------------------------------------------------

describe("SealManager.open options", () => {
  test.each([
    ["rotateAfterEncryptions 0", { rotateAfterEncryptions: 0 }],
    ["rotateAfterEncryptions 1.5", { rotateAfterEncryptions: 1.5 }],
    ["rotateAfterEncryptions above 2^31", { rotateAfterEncryptions: 2 ** 31 + 1 }],
    ["rotateAfterEncryptions NaN", { rotateAfterEncryptions: Number.NaN }],
    ["encryptionsPerReservation 0", { encryptionsPerReservation: 0 }],
    ["encryptionsPerReservation -5", { encryptionsPerReservation: -5 }],
    ["keyringMaxAgeMs 0", { keyringMaxAgeMs: 0 }],
    ["keyringMaxAgeMs Infinity", { keyringMaxAgeMs: Number.POSITIVE_INFINITY }],
  ])("%s is refused with INVALID_ARGUMENT", async (_name, options) => {
    const raw = SqliteBackend.open({ path: ":memory:" });
    opened.push(raw);
    await expectSealError(() => SealManager.open(raw, options), SealErrorCode.INVALID_ARGUMENT);
  });

  test("2^31 is the largest accepted rotateAfterEncryptions, and keyStatus reports it", async () => {
    const { seal } = await stack({ seal: { rotateAfterEncryptions: 2 ** 31 } });
    expect(seal.keyStatus().rotateAfterEncryptions).toBe(2 ** 31);
  });

  test("keyStatus after init has version 1 active", async () => {
    const { seal } = await stack();
    const status = seal.keyStatus();
    expect(status.term).toBe(1);
    expect(status.versions).toHaveLength(1);
    expect(status.versions[0]).toMatchObject({ version: 1, state: "active" });
    expect(status.installTime).toBe(status.versions[0]?.createdAt);
    expect(Number.isNaN(Date.parse(status.installTime))).toBe(false);
    expect(status.rotateAfterEncryptions).toBe(2 ** 30);
  });
});
