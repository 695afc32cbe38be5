import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { AuditingBackend, AuditingTransaction, StorageBackend, Transaction, TransactionOptions } from "@egide/storage-core";
import { PostgresBackend } from "@egide/storage-postgres";
import { SqliteBackend } from "@egide/storage-sqlite";
import { createTestDatabase, quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import { afterAll, afterEach, describe, expect, test, vi } from "vitest";
import { KEYRING_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY, SealErrorCode, SealManager, SecretBytes, barrier } from "../src/index.js";
import type { SealManagerOptions, ShareScheme } from "../src/index.js";
import { expectRejectedStorageError, expectSealError, rejection } from "./support/expect-errors.js";

// SealManager.initialize(scheme, { within, unseal }): the seal configuration, the keys, and
// whatever `within` writes (through a barrier view keyed by the new keys) commit in one
// transaction or not at all, on real SQLite files and a real PostgreSQL database.

const dir = mkdtempSync(join(tmpdir(), "egide-initialize-atomic-"));
const database = await createTestDatabase("init_atomic");
const opened: StorageBackend[] = [];
let files = 0;

afterEach(async () => {
  vi.restoreAllMocks();
  for (const backend of opened.splice(0).reverse()) await backend.close().catch(() => undefined);
});

afterAll(async () => {
  rmSync(dir, { recursive: true, force: true });
  await database.drop();
});

type Kind = "sqlite" | "postgresql";

/** One storage (a SQLite file, or a PostgreSQL schema) that several "processes" can open. */
interface Storage {
  kind: Kind;
  /** Opens a new backend on it (a new process, as far as the seal manager knows). */
  open(): Promise<AuditingBackend>;
  /** The PostgreSQL schema (PostgreSQL only). */
  schema?: string;
}

function freshStorage(kind: Kind): Storage {
  if (kind === "sqlite") {
    const path = join(dir, `init-${++files}.sqlite`);
    return {
      kind,
      async open() {
        const backend = SqliteBackend.open({ path });
        opened.push(backend);
        return backend;
      },
    };
  }
  const schema = `s_init_${randomSuffix()}`;
  return {
    kind,
    schema,
    async open() {
      const backend = await PostgresBackend.open({ ...database.connection, schema, poolMin: 0, poolMax: 4 });
      opened.push(backend);
      return backend;
    },
  };
}

/** Every key of the raw storage, the barrier's own records included. */
async function rawKeys(raw: StorageBackend): Promise<string[]> {
  const keys: string[] = [];
  for await (const entry of raw.scan("")) keys.push(entry.key);
  return keys;
}

/** A promise and the function that resolves it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const wait = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { wait, open };
}

/** Records every SecretBytes the seal manager reads, to check afterwards they were all wiped. */
function watchSecrets(): () => SecretBytes[] {
  const spy = vi.spyOn(SecretBytes.prototype, "bytes", "get");
  return () => [...new Set(spy.mock.contexts as SecretBytes[])];
}

/**
 * A backend over `inner` whose transactions can be made to fail: `afterCommit` reports a
 * failure although the transaction committed (a connection lost while committing), and
 * `conflictOnce` makes the first run of the callback end in a serialization conflict (the
 * backend retries it).
 */
class FaultyBackend implements AuditingBackend {
  readonly type: string;
  readonly audit: AuditingBackend["audit"];
  afterCommit: StorageError | undefined;
  conflictOnce = false;

  constructor(readonly inner: AuditingBackend) {
    this.type = inner.type;
    this.audit = inner.audit;
  }

  get(key: string) {
    return this.inner.get(key);
  }
  put(key: string, value: Uint8Array) {
    return this.inner.put(key, value);
  }
  delete(key: string) {
    return this.inner.delete(key);
  }
  exists(key: string) {
    return this.inner.exists(key);
  }
  list(prefix: string) {
    return this.inner.list(prefix);
  }
  listPage(prefix: string, after: string, limit: number) {
    return this.inner.listPage(prefix, after, limit);
  }
  scan(prefix: string) {
    return this.inner.scan(prefix);
  }
  health() {
    return this.inner.health();
  }
  close() {
    return this.inner.close();
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>, options?: TransactionOptions): Promise<T> {
    const result = await this.inner.transaction(async (tx) => {
      const value = await fn(tx);
      if (this.conflictOnce) {
        this.conflictOnce = false;
        throw new StorageError(StorageErrorCode.CONFLICT, "injected serialization conflict");
      }
      return value;
    }, options);
    const failure = this.afterCommit;
    this.afterCommit = undefined;
    if (failure) throw failure;
    return result;
  }
}

const KINDS: Kind[] = ["sqlite", "postgresql"];

describe.each(KINDS)("initialize with options on %s", (kind) => {
  async function manager(storage: Storage, options: SealManagerOptions = {}): Promise<{ raw: AuditingBackend; seal: SealManager }> {
    const raw = await storage.open();
    return { raw, seal: await SealManager.open(raw, options) };
  }

  test("what within writes, and its audit row, commit with the seal configuration, encrypted, and read back after unseal with the shares", async () => {
    const storage = freshStorage(kind);
    const { raw, seal } = await manager(storage);
    const scheme: ShareScheme = { shares: 5, threshold: 3 };
    const { shares } = await seal.initialize(scheme, {
      within: async (tx) => {
        await tx.put("sys/token/id/abc", Buffer.from("root token entry"));
        await tx.put("core/mounts", Buffer.from('{"entries":[]}'));
        expect((await tx.get("core/mounts"))?.toString()).toBe('{"entries":[]}');
        await tx.appendAudit({ operation: "update", path: "sys/init", success: true });
      },
    });
    expect(shares).toHaveLength(5);
    expect(seal.status()).toMatchObject({ initialized: true, sealed: true, t: 3, n: 5, progress: 0, nonce: "" });
    // Stored encrypted, beside the barrier's own records.
    expect((await rawKeys(raw)).sort()).toEqual([KEYRING_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY, "core/mounts", "sys/token/id/abc"].sort());
    expect((await raw.get("core/mounts"))?.includes("entries")).toBe(false);
    expect((await raw.audit.query()).map((row) => row.path)).toEqual(["sys/init"]);

    for (const share of shares.slice(0, 3)) await seal.unseal(share);
    const secured = barrier(raw, seal);
    expect((await secured.get("core/mounts"))?.toString()).toBe('{"entries":[]}');
    expect((await secured.get("sys/token/id/abc"))?.toString()).toBe("root token entry");

    // Another process opens the same storage with the shares and reads the same.
    const other = await manager(storage);
    for (const share of shares.slice(2)) await other.seal.unseal(share);
    expect((await barrier(other.raw, other.seal).get("core/mounts"))?.toString()).toBe('{"entries":[]}');
  });

  test("a within that throws leaves no seal configuration, key, record or audit row; the manager stays uninitialised and sealed, keys wiped; a retry works", async () => {
    const storage = freshStorage(kind);
    const { raw, seal } = await manager(storage);
    const secrets = watchSecrets();
    const injected = new Error("injected failure in within");
    const failure = await rejection(() =>
      seal.initialize(
        { shares: 3, threshold: 2 },
        {
          unseal: true,
          within: async (tx) => {
            await tx.put("sys/token/id/abc", Buffer.from("x"));
            await tx.appendAudit({ operation: "update", path: "sys/init", success: true });
            throw injected;
          },
        },
      ),
    );
    expect(failure).toBe(injected);
    expect(await rawKeys(raw)).toEqual([]);
    expect(await raw.audit.query()).toEqual([]);
    expect(seal.status()).toMatchObject({ initialized: false, sealed: true, t: 0, n: 0, progress: 0, nonce: "" });
    expect(secrets().length).toBeGreaterThan(0);
    expect(secrets().every((secret) => secret.wiped)).toBe(true);
    await expectRejectedStorageError(() => barrier(raw, seal).get("sys/token/id/abc"), StorageErrorCode.SEALED, "after the failure");
    expect((await SealManager.open(await storage.open())).initialized).toBe(false);

    const { shares } = await seal.initialize({ shares: 3, threshold: 2 }, { within: (tx) => tx.put("k", Buffer.from("retried")) });
    await seal.unseal(shares[0] as Buffer);
    await seal.unseal(shares[1] as Buffer);
    expect((await barrier(raw, seal).get("k"))?.toString()).toBe("retried");
  });

  test("a barrier view kept past within is closed", async () => {
    const { seal } = await manager(freshStorage(kind));
    let kept: AuditingTransaction | undefined;
    await seal.initialize(
      { shares: 1, threshold: 1 },
      {
        within: async (tx) => {
          kept = tx;
        },
      },
    );
    await expectRejectedStorageError(
      () => (kept as AuditingTransaction).put("late", Buffer.from("x")),
      StorageErrorCode.CLOSED,
      "kept view",
    );
  });

  test("unseal: true serves reads and writes at once, with the reservation the first keyring counts, and no unseal progress", async () => {
    const storage = freshStorage(kind);
    const reservation = 50;
    const { raw, seal } = await manager(storage, { encryptionsPerReservation: reservation });
    const { shares } = await seal.initialize(
      { shares: 3, threshold: 2 },
      { unseal: true, within: (tx) => tx.put("a", Buffer.from("from init")) },
    );
    expect(seal.status()).toMatchObject({ initialized: true, sealed: false, t: 2, n: 3, progress: 0, nonce: "" });
    const secured = barrier(raw, seal);
    expect((await secured.get("a"))?.toString()).toBe("from init");
    await secured.put("b", Buffer.from("after init"));
    await secured.transaction(async (tx) => tx.put("c", Buffer.from("in a transaction")));
    // No second reservation was needed: the keyring still counts the one made at init.
    expect(seal.keyStatus()).toMatchObject({ term: 1, encryptions: reservation });
    expect(seal.status().progress).toBe(0);

    // Another process unsealing with the shares reserves on top of it (a normal unseal).
    const other = await manager(storage, { encryptionsPerReservation: reservation });
    await other.seal.unseal(shares[0] as Buffer);
    await other.seal.unseal(shares[2] as Buffer);
    expect(other.seal.keyStatus().encryptions).toBe(2 * reservation);
    expect((await barrier(other.raw, other.seal).get("b"))?.toString()).toBe("after init");

    // Sealing works as after any unseal, and the shares unseal again.
    seal.seal();
    await expectRejectedStorageError(() => secured.get("a"), StorageErrorCode.SEALED, "sealed");
    await seal.unseal(shares[1] as Buffer);
    await seal.unseal(shares[2] as Buffer);
    expect((await secured.get("c"))?.toString()).toBe("in a transaction");
  });

  test("unseal: true without within; and initialize(scheme) alone still leaves it sealed, with no encryption counted at first", async () => {
    const reservation = 40;
    const auto = await manager(freshStorage(kind), { encryptionsPerReservation: reservation });
    await auto.seal.initialize({ shares: 1, threshold: 1 }, { unseal: true });
    expect(auto.seal.sealed).toBe(false);
    expect(auto.seal.keyStatus().encryptions).toBe(reservation);
    await barrier(auto.raw, auto.seal).put("x", Buffer.from("y"));

    const plain = await manager(freshStorage(kind), { encryptionsPerReservation: reservation });
    const { shares } = await plain.seal.initialize({ shares: 1, threshold: 1 });
    expect(plain.seal.status()).toMatchObject({ initialized: true, sealed: true, progress: 0 });
    await plain.seal.unseal(shares[0] as Buffer);
    expect(plain.seal.keyStatus().encryptions).toBe(reservation);
  });

  test("while within runs the manager, its barrier and other processes see an uninitialised, sealed storage", async () => {
    const storage = freshStorage(kind);
    const { raw, seal } = await manager(storage);
    const secured = barrier(raw, seal);
    const other = await manager(storage);
    const seen: unknown[] = [];
    await seal.initialize(
      { shares: 1, threshold: 1 },
      {
        unseal: true,
        within: async (tx) => {
          await tx.put("a", Buffer.from("pending"));
          seen.push({ sealed: seal.sealed, initialized: seal.initialized });
          seen.push(seal.status());
          await expectRejectedStorageError(() => secured.get("a"), StorageErrorCode.SEALED, "barrier during init");
          await expectRejectedStorageError(() => seal.keyStatus(), StorageErrorCode.SEALED, "keyStatus during init");
          await other.seal.refresh();
          seen.push({ otherInitialized: other.seal.initialized });
        },
      },
    );
    expect(seen).toEqual([
      { sealed: true, initialized: false },
      { type: "shamir", initialized: false, sealed: true, t: 0, n: 0, progress: 0, nonce: "" },
      { otherInitialized: false },
    ]);
    expect(seal.sealed).toBe(false);
    await other.seal.refresh();
    expect(other.seal.initialized).toBe(true);
  });

  test("unseal() calls during an initialisation are refused and never mixed with it", async () => {
    const { seal } = await manager(freshStorage(kind));
    const inside = gate();
    const release = gate();
    const init = seal.initialize(
      { shares: 5, threshold: 3 },
      {
        within: async (tx) => {
          await tx.put("a", Buffer.from("x"));
          inside.open();
          await release.wait;
        },
      },
    );
    await inside.wait;
    await expectSealError(() => seal.unseal(Buffer.alloc(33, 7)), SealErrorCode.NOT_INITIALIZED);
    await expectSealError(() => seal.unseal("AAAA"), SealErrorCode.NOT_INITIALIZED);
    expect(seal.status()).toMatchObject({ initialized: false, sealed: true, progress: 0, nonce: "" });
    release.open();
    const { shares } = await init;
    // The initialisation gave no share to the unseal attempt: one share is progress 1 of 3.
    expect(seal.status()).toMatchObject({ initialized: true, sealed: true, progress: 0, nonce: "" });
    expect((await seal.unseal(shares[4] as Buffer)).progress).toBe(1);
    expect((await seal.unseal(shares[3] as Buffer)).progress).toBe(2);
    expect((await seal.unseal(shares[0] as Buffer)).sealed).toBe(false);
  });

  test("an initialiser that lost the race gets ALREADY_INITIALIZED, commits nothing, and takes the winner's configuration", async () => {
    const storage = freshStorage(kind);
    const winner = await manager(storage);
    const loser = await manager(storage);
    const secrets = watchSecrets();
    let loserWithin = 0;
    const loserInit = (): Promise<unknown> =>
      loser.seal.initialize(
        { shares: 2, threshold: 2 },
        {
          unseal: true,
          within: async (tx) => {
            loserWithin++;
            await tx.put("loser", Buffer.from("x"));
          },
        },
      );
    let winnerShares: Buffer[];
    if (kind === "postgresql") {
      // Really concurrent: the winner holds its transaction open while the loser starts its own.
      const inside = gate();
      const release = gate();
      const winning = winner.seal.initialize(
        { shares: 1, threshold: 1 },
        {
          within: async (tx) => {
            await tx.put("winner", Buffer.from("x"));
            inside.open();
            await release.wait;
          },
        },
      );
      await inside.wait;
      const losing = rejection(loserInit);
      await new Promise((resolve) => setTimeout(resolve, 200));
      release.open();
      ({ shares: winnerShares } = await winning);
      const error = await losing;
      expect((error as { code?: string }).code).toBe(SealErrorCode.ALREADY_INITIALIZED);
    } else {
      // SQLite's writer lock is taken synchronously (BEGIN IMMEDIATE would block this very
      // event loop): the loser opened its manager before the winner initialised, and tries after.
      ({ shares: winnerShares } = await winner.seal.initialize(
        { shares: 1, threshold: 1 },
        { within: (tx) => tx.put("winner", Buffer.from("x")) },
      ));
      await expectSealError(loserInit, SealErrorCode.ALREADY_INITIALIZED);
      expect(loserWithin).toBe(0);
    }
    expect(loser.seal.status()).toMatchObject({ initialized: true, sealed: true, t: 1, n: 1, progress: 0 });
    expect(secrets().every((secret) => secret.wiped)).toBe(true);
    expect(await loser.raw.exists("loser")).toBe(false);
    expect(await loser.raw.exists("winner")).toBe(true);
    await loser.seal.unseal(winnerShares[0] as Buffer);
    expect((await barrier(loser.raw, loser.seal).get("winner"))?.toString()).toBe("x");
  });

  test("a transaction retried after a conflict commits only the last run of within, counted once in the keyring", async () => {
    const storage = freshStorage(kind);
    const raw = new FaultyBackend(await storage.open());
    const seal = await SealManager.open(raw, { encryptionsPerReservation: 2 });
    raw.conflictOnce = true;
    let runs = 0;
    await seal.initialize(
      { shares: 1, threshold: 1 },
      {
        unseal: true,
        within: async (tx) => {
          runs++;
          // Three values with a reservation of two: one overdraws, and is counted.
          for (const name of ["a", "b", "c"]) await tx.put(`run-${runs}/${name}`, Buffer.from(name));
        },
      },
    );
    expect(runs).toBe(2);
    expect(await raw.list("")).toEqual([".egide/", "run-2/"]);
    expect(seal.keyStatus().encryptions).toBe(3);
    expect((await barrier(raw, seal).get("run-2/c"))?.toString()).toBe("c");
  });

  test("a commit reported as failed that did happen completes the initialisation; one that did not leaves nothing", async () => {
    const storage = freshStorage(kind);
    const raw = new FaultyBackend(await storage.open());
    const seal = await SealManager.open(raw);
    raw.afterCommit = new StorageError(StorageErrorCode.UNAVAILABLE, "commit outcome unknown: injected");
    const { shares } = await seal.initialize(
      { shares: 1, threshold: 1 },
      { unseal: true, within: (tx) => tx.put("a", Buffer.from("kept")) },
    );
    expect(seal.status()).toMatchObject({ initialized: true, sealed: false });
    expect((await barrier(raw, seal).get("a"))?.toString()).toBe("kept");
    seal.seal();
    await seal.unseal(shares[0] as Buffer);
    expect(seal.sealed).toBe(false);

    const second = freshStorage(kind);
    const faulty = new FaultyBackend(await second.open());
    const other = await SealManager.open(faulty);
    const lost = new StorageError(StorageErrorCode.UNAVAILABLE, "connection lost before commit: injected");
    const failure = await rejection(() =>
      other.initialize(
        { shares: 1, threshold: 1 },
        {
          unseal: true,
          within: async (tx) => {
            await tx.put("a", Buffer.from("lost"));
            throw lost;
          },
        },
      ),
    );
    expect(failure).toBe(lost);
    expect(other.status()).toMatchObject({ initialized: false, sealed: true });
    expect(await rawKeys(faulty)).toEqual([]);
  });

  test("keys of an earlier installation whose storage was emptied are replaced, never kept, by a new initialisation", async () => {
    const { raw, seal } = await manager(freshStorage(kind));
    const first = await seal.initialize({ shares: 1, threshold: 1 }, { unseal: true, within: (tx) => tx.put("a", Buffer.from("first")) });
    for (const key of await rawKeys(raw)) await raw.delete(key);
    await seal.refresh();
    expect(seal.status()).toMatchObject({ initialized: false, sealed: false });
    const second = await seal.initialize({ shares: 1, threshold: 1 }, { unseal: true, within: (tx) => tx.put("a", Buffer.from("second")) });
    expect(seal.status()).toMatchObject({ initialized: true, sealed: false });
    expect((await barrier(raw, seal).get("a"))?.toString()).toBe("second");
    seal.seal();
    await expectSealError(() => seal.unseal(first.shares[0] as Buffer), SealErrorCode.UNSEAL_FAILED);
    await seal.unseal(second.shares[0] as Buffer);
    expect((await barrier(raw, seal).get("a"))?.toString()).toBe("second");
  });

  if (kind === "postgresql") {
    test("a failure at COMMIT itself (a deferred constraint) leaves nothing, and a retry works", async () => {
      const storage = freshStorage(kind);
      const { raw, seal } = await manager(storage);
      const table = `${quoteIdentifier(storage.schema as string)}.egide_storage`;
      const fn = `${quoteIdentifier(storage.schema as string)}.refuse_at_commit`;
      await withClient(database.name, async (client) => {
        await client.query(
          `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected at commit'; END $$`,
        );
        await client.query(
          `CREATE CONSTRAINT TRIGGER refuse_at_commit AFTER INSERT ON ${table} DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ${fn}()`,
        );
      });
      let withinDone = false;
      const failure = await rejection(() =>
        seal.initialize(
          { shares: 1, threshold: 1 },
          {
            unseal: true,
            within: async (tx) => {
              await tx.put("a", Buffer.from("x"));
              await tx.appendAudit({ operation: "update", path: "sys/init", success: true });
              withinDone = true;
            },
          },
        ),
      );
      expect(withinDone).toBe(true);
      expect(String((failure as Error).message)).toMatch(/injected at commit/);
      expect(seal.status()).toMatchObject({ initialized: false, sealed: true });
      expect(await rawKeys(raw)).toEqual([]);
      expect(await raw.audit.query()).toEqual([]);

      await withClient(database.name, (client) => client.query(`DROP TRIGGER refuse_at_commit ON ${table}`));
      await seal.initialize({ shares: 1, threshold: 1 }, { unseal: true, within: (tx) => tx.put("a", Buffer.from("retried")) });
      expect((await barrier(raw, seal).get("a"))?.toString()).toBe("retried");
    });
  }
});
