import { randomBytes } from "node:crypto";
import { format, inspect } from "node:util";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, describe, expect, test, vi } from "vitest";
import { KEYRING_KEY, SEAL_CONFIG_KEY, SealManager, SecretBytes, barrier } from "../src/index.js";
import type { RandomSource, SealLogger } from "../src/index.js";
import { Keyring } from "../src/keyring.js";
import { parseSealConfig } from "../src/seal-config.js";
import { recordingRandom } from "./support/deterministic-random.js";

// ---- helpers ---------------------------------------------------------------------------------

const opened: StorageBackend[] = [];

afterEach(async () => {
  vi.restoreAllMocks();
  for (const backend of opened.splice(0)) await backend.close();
});

function memory(): StorageBackend {
  const backend = SqliteBackend.open({ path: ":memory:" });
  opened.push(backend);
  return backend;
}

function isZero(bytes: Uint8Array): boolean {
  return bytes.every((b) => b === 0);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

async function storageErrorCode(run: () => unknown): Promise<string | undefined> {
  try {
    await run();
  } catch (error) {
    return StorageError.isInstance(error) ? error.code : `not a StorageError: ${String(error)}`;
  }
  return undefined;
}

async function drain(iterable: AsyncIterable<unknown>): Promise<number> {
  let count = 0;
  for await (const _entry of iterable) count++;
  return count;
}

/**
 * Records the Keyring instances and SecretBytes buffers the seal manager uses, through spies on
 * their prototypes (the instances themselves sit in private fields), so the test can check
 * afterwards that what they held was wiped.
 */
function watchKeyMaterial(): { keyrings: () => Keyring[]; secretBuffers: () => Buffer[]; secrets: () => SecretBytes[] } {
  const activeSpy = vi.spyOn(Keyring.prototype, "active");
  const bytesSpy = vi.spyOn(SecretBytes.prototype, "bytes", "get");
  return {
    keyrings: () => [...new Set(activeSpy.mock.contexts as Keyring[])],
    secretBuffers: () => [...new Set(bytesSpy.mock.results.filter((r) => r.type === "return").map((r) => r.value as Buffer))],
    secrets: () => [...new Set(bytesSpy.mock.contexts as SecretBytes[])],
  };
}

// ---- wiping ----------------------------------------------------------------------------------

describe("key buffers are wiped", () => {
  test("every 32-byte buffer the random source filled is zero after seal() (except the public salt); DEKs right after each put", async () => {
    const random = recordingRandom();
    const watch = watchKeyMaterial();
    const raw = memory();
    const seal = await SealManager.open(raw, { random });
    const { shares } = await seal.initialize({ shares: 3, threshold: 2 });

    // The install salt is 32 random bytes too, but it is not secret: it is the HKDF salt, stored
    // in plaintext in the seal configuration (which must be readable while sealed) and kept by
    // the manager for every derivation. It is identified by its content (the config parsed from
    // storage) and excluded, exactly that one buffer and nothing else.
    const configBytes = await raw.get(SEAL_CONFIG_KEY);
    if (configBytes === null) throw new Error("no seal config");
    const salt = parseSealConfig(configBytes).salt;
    const saltFills = random.filled.filter((b) => b.byteLength === 32 && asBuffer(b).equals(salt));
    expect(saltFills).toHaveLength(1);
    const saltFill = saltFills[0];
    const keyFills = (): Uint8Array[] => random.filled.filter((b) => b.byteLength === 32 && b !== saltFill);

    // initialize drew the unseal key and the master key from the source and wiped both.
    expect(keyFills().length).toBeGreaterThanOrEqual(2);
    for (const fill of keyFills()) expect(isZero(fill)).toBe(true);

    await seal.unseal(shares[0] as Buffer);
    await seal.unseal(shares[2] as Buffer);
    expect(seal.sealed).toBe(false);
    const secured = barrier(raw, seal);

    const values = new Map<string, Buffer>();
    const putAndCheckDek = async (key: string, value: Buffer): Promise<void> => {
      const before = random.filled.length;
      await secured.put(key, value);
      values.set(key, value);
      const deks = random.filled.slice(before).filter((b) => b.byteLength === 32);
      expect(deks.length, `DEKs drawn for ${key}`).toBe(1);
      for (const dek of deks) expect(isZero(dek), `DEK of ${key} right after the put`).toBe(true);
    };
    for (let i = 0; i < 8; i++) await putAndCheckDek(`secret/${i}`, Buffer.from(`plaintext number ${i}`));
    await putAndCheckDek("secret/empty", Buffer.alloc(0));

    // DEKs of a transaction's writes are wiped by the time it commits.
    const beforeTx = random.filled.length;
    await secured.transaction(async (tx) => {
      await tx.put("tx/a", Buffer.from("in a transaction a"));
      await tx.put("tx/b", Buffer.from("in a transaction b"));
    });
    values.set("tx/a", Buffer.from("in a transaction a"));
    values.set("tx/b", Buffer.from("in a transaction b"));
    const txDeks = random.filled.slice(beforeTx).filter((b) => b.byteLength === 32);
    expect(txDeks).toHaveLength(2);
    for (const dek of txDeks) expect(isZero(dek)).toBe(true);

    for (const [key, value] of values) expect(await secured.get(key)).toEqual(value);
    await seal.rotate();
    await putAndCheckDek("secret/after-rotation", Buffer.from("written under version 2"));
    // Reading version-1 records derives version 1's key in the current keyring as well.
    for (const [key, value] of values) expect(await secured.get(key)).toEqual(value);
    await seal.rewrap({ batchSize: 4 });
    for (const [key, value] of values) expect(await secured.get(key)).toEqual(value);
    await putAndCheckDek("secret/last", Buffer.from("the last one"));

    // Key material held while unsealed: derived encryption keys (v1 and v2) and the master and
    // system keys. Non-zero now, so the checks after seal() can fail.
    const derived = watch.keyrings().flatMap((keyring) => keyring.heldKeys());
    expect(derived.length).toBeGreaterThanOrEqual(2);
    for (const key of derived) {
      expect(key.byteLength).toBe(32);
      expect(isZero(key)).toBe(false);
    }
    const secretBuffers = watch.secretBuffers();
    expect(secretBuffers.length).toBeGreaterThanOrEqual(2);
    for (const buffer of secretBuffers) expect(isZero(buffer)).toBe(false);

    seal.seal();

    for (const fill of keyFills()) expect(isZero(fill)).toBe(true);
    for (const key of derived) expect(isZero(key), "a derived encryption key after seal()").toBe(true);
    for (const buffer of secretBuffers) expect(isZero(buffer), "master or system key after seal()").toBe(true);
    for (const secret of watch.secrets()) expect(secret.wiped).toBe(true);
    for (const keyring of watch.keyrings()) expect(keyring.heldKeys()).toEqual([]);
    // The salt stays as it was (it was never secret, and the manager needs it to unseal again).
    expect(saltFill && asBuffer(saltFill).equals(salt)).toBe(true);
    expect(isZero(salt)).toBe(false);

    // The observable side: nothing that needs a key works.
    expect(await storageErrorCode(() => seal.keyStatus())).toBe(StorageErrorCode.SEALED);
    expect(await storageErrorCode(() => secured.get("secret/0"))).toBe(StorageErrorCode.SEALED);
    expect(await storageErrorCode(() => secured.put("secret/0", Buffer.from("x")))).toBe(StorageErrorCode.SEALED);
    expect(await storageErrorCode(() => drain(secured.scan("")))).toBe(StorageErrorCode.SEALED);
    expect(await storageErrorCode(() => secured.transaction(async (tx) => tx.get("secret/0")))).toBe(StorageErrorCode.SEALED);
    // Keyrings of the sealed manager refuse lookups instead of deriving keys again.
    for (const keyring of watch.keyrings()) expect(await storageErrorCode(() => keyring.active())).toBe(StorageErrorCode.SEALED);
  });

  test("failed unseal attempts wipe what they derived", async () => {
    const watch = watchKeyMaterial();
    const raw = memory();
    const seal = await SealManager.open(raw);
    const { shares } = await seal.initialize({ shares: 3, threshold: 2 });

    // Wrong shares never open the master key: no key material is created at all.
    const corrupted = Buffer.from(shares[1] as Buffer);
    corrupted[5] = (corrupted[5] ?? 0) ^ 0xff;
    await seal.unseal(shares[0] as Buffer);
    await expect(seal.unseal(corrupted)).rejects.toMatchObject({ code: "UNSEAL_FAILED" });
    expect(watch.secrets()).toHaveLength(0);

    // The right shares with a damaged keyring record: the master and system keys are opened,
    // then the keyring fails (reported as damage, not as wrong shares), and both keys must be
    // wiped on the way out.
    await raw.put(KEYRING_KEY, Buffer.concat([Buffer.from([1, 3, 0, 0, 0, 0]), Buffer.alloc(60, 7)]));
    await seal.unseal(shares[0] as Buffer);
    await expect(seal.unseal(shares[2] as Buffer)).rejects.toMatchObject({
      code: "CORRUPT",
      message: expect.stringContaining("keyring record is damaged"),
    });
    expect(seal.sealed).toBe(true);
    expect(watch.secrets().length).toBeGreaterThanOrEqual(2);
    for (const secret of watch.secrets()) expect(secret.wiped).toBe(true);
    for (const buffer of watch.secretBuffers()) expect(isZero(buffer)).toBe(true);
  });
});

// ---- logs ------------------------------------------------------------------------------------

/** Text of anything a log line might carry: strings as they are, bytes also as hex and base64. */
function render(value: unknown, seen = new Set<unknown>()): string {
  if (typeof value === "string") return value;
  if (value instanceof Uint8Array) {
    const bytes = asBuffer(value);
    return `${bytes.toString("hex")} ${bytes.toString("base64")} ${bytes.toString("base64url")} ${inspect(value)}`;
  }
  if (value === null || typeof value !== "object") return String(value);
  if (seen.has(value)) return "";
  seen.add(value);
  const parts = [
    inspect(value, { depth: 20, showHidden: true, maxArrayLength: null, maxStringLength: null, breakLength: Number.POSITIVE_INFINITY }),
  ];
  if (value instanceof Error) {
    parts.push(value.message, render(value.cause, seen));
  }
  for (const inner of Object.values(value)) parts.push(render(inner, seen));
  return parts.join(" ");
}

function needlesOf(bytes: Uint8Array): string[] {
  const buffer = asBuffer(bytes);
  return [buffer.toString("hex"), buffer.toString("hex").toUpperCase(), buffer.toString("base64"), buffer.toString("base64url")];
}

describe("logs never carry secrets", () => {
  test("a full cycle's logger events, console output and stdout/stderr hold no share, key or plaintext", async () => {
    // The source records a copy of every 32-byte buffer at the moment it is filled (keys and
    // DEKs), before the code under test wipes it.
    const recording = recordingRandom();
    const drawnKeys: Buffer[] = [];
    const random: RandomSource = {
      fill(target) {
        recording.fill(target);
        if (target.byteLength === 32) drawnKeys.push(Buffer.from(target));
      },
    };
    const watch = watchKeyMaterial();

    const events: Array<{ level: string; message: string; fields: Record<string, unknown> | undefined }> = [];
    const logger: SealLogger = {
      info: (message, fields) => events.push({ level: "info", message, fields }),
      warn: (message, fields) => events.push({ level: "warn", message, fields }),
    };

    const captured: unknown[] = [];
    const consoleSpies = (["log", "info", "warn", "error", "debug", "trace"] as const).map((method) =>
      vi.spyOn(console, method).mockImplementation((...args: unknown[]) => {
        captured.push(format(...args), ...args);
      }),
    );
    const writeSpies = [process.stdout, process.stderr].map((stream) =>
      vi.spyOn(stream, "write").mockImplementation(((chunk: unknown) => {
        captured.push(chunk);
        return true;
      }) as typeof stream.write),
    );

    const errors: unknown[] = [];
    const plaintexts = [
      "correct horse battery staple",
      "the launch codes are 0000",
      "Zm9vYmFyIGJhc2U2NCBwbGFpbnRleHQ=",
      "p@ssw0rd-in-a-transaction",
    ];
    let shares: Buffer[] = [];
    let autoKey: Buffer | undefined;
    const heldBeforeSeal: Buffer[] = [];
    try {
      const raw = memory();
      const seal = await SealManager.open(raw, { random, logger, encryptionsPerReservation: 3 });
      ({ shares } = await seal.initialize({ shares: 5, threshold: 3 }));

      // Failed attempts on the way: a malformed share and a foreign one.
      const foreign = await SealManager.open(memory());
      const foreignShares = (await foreign.initialize({ shares: 5, threshold: 3 })).shares;
      shares.push(...foreignShares);
      await seal.unseal(shares[0] as Buffer).catch((e: unknown) => errors.push(e));
      await seal.unseal(`${(shares[1] as Buffer).toString("base64")}=`).catch((e: unknown) => errors.push(e));
      await seal.unseal(foreignShares[1] as Buffer).catch((e: unknown) => errors.push(e));
      await seal.unseal(shares[2] as Buffer).catch((e: unknown) => errors.push(e));
      expect(errors).toHaveLength(2);
      for (const index of [1, 3, 4]) await seal.unseal(shares[index] as Buffer);
      expect(seal.sealed).toBe(false);

      const secured = barrier(raw, seal);
      await secured.put("a", Buffer.from(plaintexts[0] as string));
      await secured.put("b", Buffer.from(plaintexts[1] as string));
      await secured.put("c", Buffer.from(plaintexts[2] as string));
      await secured.transaction(async (tx) => tx.put("d", Buffer.from(plaintexts[3] as string)));
      for (const key of ["a", "b", "c", "d"]) expect(await secured.get(key)).not.toBeNull();
      await seal.rotate();
      await secured.put("e", Buffer.from(plaintexts[0] as string));
      await secured.get("a");
      await seal.rewrap({ batchSize: 2 });
      await drain(secured.scan(""));
      // A read that fails (a record moved to another key) produces an error to inspect as well.
      await raw.put("moved", (await raw.get("a")) as Buffer);
      await secured.get("moved").catch((e: unknown) => errors.push(e));
      heldBeforeSeal.push(...watch.keyrings().flatMap((k) => k.heldKeys().map((key) => Buffer.from(key))));
      heldBeforeSeal.push(...watch.secretBuffers().map((b) => Buffer.from(b)));
      seal.seal();

      // Auto-unseal of a 1-of-1 installation reports through the same logger.
      const auto = await SealManager.open(memory(), { random, logger });
      autoKey = Buffer.from((await auto.initialize({ shares: 1, threshold: 1 })).shares[0] as Buffer);
      const name = "EGIDE_TEST_HYGIENE_UNSEAL_KEY";
      process.env[name] = `${autoKey.toString("base64").slice(0, -2)}==`;
      await auto.autoUnseal({ env: name }).catch((e: unknown) => errors.push(e));
      process.env[name] = autoKey.toString("hex");
      try {
        await auto.autoUnseal({ env: name });
      } finally {
        delete process.env[name];
      }
      await barrier(auto.storage, auto).put("x", Buffer.from(plaintexts[1] as string));
      auto.seal();
    } finally {
      for (const spy of [...consoleSpies, ...writeSpies]) spy.mockRestore();
    }

    // The logger did receive the events (so this test can fail), with their non-secret fields.
    const messages = events.map((e) => e.message);
    expect(messages).toEqual(expect.arrayContaining(["initialized", "unsealed", "key rotated", "rewrap complete", "sealed"]));
    expect(events.find((e) => e.message === "initialized")?.fields).toEqual({ shares: 5, threshold: 3 });
    expect(events.filter((e) => e.message === "sealed")).toHaveLength(2);
    expect(errors.length).toBeGreaterThanOrEqual(4);

    const haystack = [
      ...events.map((e) => `${e.level} ${e.message} ${render(e.fields)}`),
      ...captured.map((c) => render(c)),
      ...errors.map((e) => render(e)),
    ].join("\n");
    // Self-check of the scanner: a share handed to it as bytes is found.
    const probe = render({ leaked: shares[0] });
    const share0 = shares[0] as Buffer;
    for (const needle of [share0.toString("hex"), share0.toString("base64")]) expect(probe).toContain(needle);

    const secrets: Array<[string, string]> = [];
    for (const share of shares) for (const needle of needlesOf(share)) secrets.push(["share", needle]);
    if (autoKey) for (const needle of needlesOf(autoKey)) secrets.push(["auto-unseal key", needle]);
    for (const text of plaintexts) {
      secrets.push(["plaintext", text]);
      secrets.push(["plaintext as hex", Buffer.from(text).toString("hex")]);
    }
    expect(drawnKeys.length).toBeGreaterThanOrEqual(8);
    for (const key of drawnKeys) for (const needle of needlesOf(key)) secrets.push(["random key or DEK", needle]);
    expect(heldBeforeSeal.length).toBeGreaterThanOrEqual(3);
    for (const key of heldBeforeSeal) for (const needle of needlesOf(key)) secrets.push(["derived or master key", needle]);

    for (const [kind, needle] of secrets) {
      expect(haystack.includes(needle), `${kind} found in the logs: ${needle}`).toBe(false);
    }
  });
});

// ---- SecretBytes -----------------------------------------------------------------------------

describe("SecretBytes", () => {
  test("prints as [redacted] everywhere, never the bytes", () => {
    const bytes = randomBytes(32);
    const copy = Buffer.from(bytes);
    const secret = new SecretBytes(bytes);
    const needles = [...needlesOf(copy), inspect(copy).slice(8, 40)];

    expect(inspect(secret)).toBe("SecretBytes [redacted]");
    expect(String(secret)).toBe("[redacted]");
    expect(`${secret}`).toBe("[redacted]");
    expect(`key: ${secret}`).toBe("key: [redacted]");
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
    expect(JSON.stringify(secret)).toBe('"[redacted]"');

    const renderings = [
      inspect(secret),
      inspect({ nested: { deeper: [secret] } }, { depth: Number.POSITIVE_INFINITY }),
      inspect(secret, { showHidden: true, depth: Number.POSITIVE_INFINITY }),
      inspect(secret, { customInspect: false, showHidden: true }),
      format("%s %o %O %j %d", secret, secret, secret, secret, secret),
      format(secret),
      String(secret),
      [secret].join(","),
      `${secret}`,
      JSON.stringify({ secret, list: [secret] }),
      Object.keys(secret).join(","),
      JSON.stringify(Object.getOwnPropertyNames(secret)),
    ];
    for (const rendering of renderings) {
      for (const needle of needles) expect(rendering, rendering).not.toContain(needle);
    }
    for (const rendering of renderings.slice(0, 3)) expect(rendering).toContain("[redacted]");

    // The bytes are there for the code that needs them.
    expect(secret.bytes).toBe(bytes);
    expect(secret.bytes.equals(copy)).toBe(true);
    expect(secret.length).toBe(32);
    expect(secret.wiped).toBe(false);
  });

  test("wipe() zeroes the very buffer it was given, and .bytes throws afterwards", () => {
    const bytes = randomBytes(32);
    const view = new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const secret = new SecretBytes(bytes);
    expect(isZero(view)).toBe(false);
    secret.wipe();
    expect(isZero(bytes)).toBe(true);
    expect(isZero(view)).toBe(true);
    expect(secret.wiped).toBe(true);
    expect(() => secret.bytes).toThrow(/wiped/);
    expect(secret.length).toBe(32);
    // Idempotent, and still redacted.
    secret.wipe();
    expect(isZero(bytes)).toBe(true);
    expect(inspect(secret)).toBe("SecretBytes [redacted]");
    expect(JSON.stringify({ secret })).toBe('{"secret":"[redacted]"}');
  });
});
