import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, describe, expect, test } from "vitest";
import { SEAL_CONFIG_KEY, SealError, SealErrorCode, SealManager, barrier, writeUnsealKeyFile } from "../src/index.js";
import type { SealStatus, ShareScheme } from "../src/index.js";

// ---- helpers ---------------------------------------------------------------------------------

const opened: StorageBackend[] = [];
const tempDirs: string[] = [];

afterEach(async () => {
  for (const backend of opened.splice(0)) await backend.close();
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function memory(): StorageBackend {
  const backend = SqliteBackend.open({ path: ":memory:" });
  opened.push(backend);
  return backend;
}

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "egide-unseal-"));
  tempDirs.push(dir);
  return dir;
}

async function installation(scheme: ShareScheme): Promise<{ raw: StorageBackend; seal: SealManager; shares: Buffer[] }> {
  const raw = memory();
  const seal = await SealManager.open(raw);
  const { shares } = await seal.initialize(scheme);
  return { raw, seal, shares };
}

/** The error `promise` rejects with, which must be a SealError with `code`. */
async function sealErrorOf(promise: Promise<unknown>, code: SealErrorCode): Promise<SealError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (caught === undefined) throw new Error(`expected SealError ${code}, but the operation succeeded`);
  expect(SealError.isInstance(caught), `expected a SealError, got ${String(caught)}`).toBe(true);
  expect((caught as SealError).code).toBe(code);
  return caught as SealError;
}

async function storageErrorOf(promise: Promise<unknown>, code: StorageErrorCode): Promise<StorageError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (caught === undefined) throw new Error(`expected StorageError ${code}, but the operation succeeded`);
  expect(StorageError.isInstance(caught), `expected a StorageError, got ${String(caught)}`).toBe(true);
  expect((caught as StorageError).code).toBe(code);
  return caught as StorageError;
}

function at<T>(items: readonly T[], index: number): T {
  const item = items[index];
  if (item === undefined) throw new Error(`no item at ${index}`);
  return item;
}

/** Every k-subset of 0..n-1, in lexicographic order. */
function* combinations(n: number, k: number): Generator<number[]> {
  const indices = Array.from({ length: k }, (_, i) => i);
  if (k > n) return;
  for (;;) {
    yield [...indices];
    let i = k - 1;
    while (i >= 0 && at(indices, i) === n - k + i) i--;
    if (i < 0) return;
    indices[i] = at(indices, i) + 1;
    for (let j = i + 1; j < k; j++) indices[j] = at(indices, j - 1) + 1;
  }
}

function binomial(n: number, k: number): number {
  let result = 1;
  for (let i = 1; i <= k; i++) result = (result * (n - k + i)) / i;
  return result;
}

type Encoding = "raw" | "base64" | "hex";
const ENCODINGS: readonly Encoding[] = ["raw", "base64", "hex"];

function encode(share: Buffer, encoding: Encoding): string | Uint8Array {
  if (encoding === "base64") return share.toString("base64");
  if (encoding === "hex") return share.toString("hex");
  return new Uint8Array(share);
}

const GENERIC_UNSEAL_FAILURE = "unseal failed: the shares do not open this installation";

function expectStatus(status: SealStatus, expected: Partial<SealStatus>): void {
  expect(status).toMatchObject(expected);
}

// ---- every t-subset unseals ------------------------------------------------------------------

describe("Shamir: every t-subset of the shares unseals", () => {
  test.each([
    [1, 1],
    [2, 2],
    [5, 3],
    [10, 7],
  ])("%i shares, threshold %i: all C(n,t) subsets unseal and read back a value", async (n, t) => {
    const raw = memory();
    const seal = await SealManager.open(raw);
    const { shares } = await seal.initialize({ shares: n, threshold: t });
    expect(shares).toHaveLength(n);
    const expectedLength = n === 1 ? 32 : 33;
    for (const share of shares) expect(share.byteLength).toBe(expectedLength);
    // Distinct shares (x coordinates included): no two holders hold the same thing.
    expect(new Set(shares.map((s) => s.toString("hex"))).size).toBe(n);

    // Initialise leaves the installation sealed.
    expectStatus(seal.status(), { initialized: true, sealed: true, t, n, progress: 0, nonce: "" });

    const secured = barrier(raw, seal);
    for (const index of [...Array(t).keys()]) await seal.unseal(at(shares, index));
    expect(seal.sealed).toBe(false);
    const value = Buffer.from(`written before the subset walk (${n}/${t})`);
    await secured.put("probe/value", value);
    seal.seal();

    let attempts = 0;
    for (const subset of combinations(n, t)) {
      expect(seal.sealed).toBe(true);
      // Vary order and encodings across attempts: shares may arrive in any order and form.
      const order = attempts % 2 === 0 ? subset : [...subset].reverse();
      let status: SealStatus | undefined;
      let nonce = "";
      for (const [position, index] of order.entries()) {
        const encoding = at(ENCODINGS, (attempts + position) % ENCODINGS.length);
        status = await seal.unseal(encode(at(shares, index), encoding));
        if (position < t - 1) {
          expectStatus(status, { sealed: true, progress: position + 1 });
          expect(status.nonce).not.toBe("");
          if (position === 0) nonce = status.nonce;
          else expect(status.nonce).toBe(nonce);
        }
      }
      expect(status).toEqual({ type: "shamir", initialized: true, sealed: false, t, n, progress: 0, nonce: "" });
      expect(await secured.get("probe/value")).toEqual(value);
      seal.seal();
      attempts++;
    }
    expect(attempts).toBe(binomial(n, t));
  });

  test("shares submitted concurrently are counted one at a time and unseal", async () => {
    const { raw, seal, shares } = await installation({ shares: 5, threshold: 3 });
    const statuses = await Promise.all([seal.unseal(at(shares, 4)), seal.unseal(at(shares, 1)), seal.unseal(at(shares, 2))]);
    expect(statuses.map((s) => s.progress)).toEqual([1, 2, 0]);
    expect(statuses.map((s) => s.sealed)).toEqual([true, true, false]);
    await barrier(raw, seal).put("k", Buffer.from("v"));
    expect(await barrier(raw, seal).get("k")).toEqual(Buffer.from("v"));
  });
});

// ---- below the threshold ---------------------------------------------------------------------

describe("Shamir: fewer than t shares", () => {
  test.each([
    [2, 2],
    [5, 3],
    [10, 7],
  ])("%i shares, threshold %i: t-1 shares leave it sealed and the barrier refuses with SEALED", async (n, t) => {
    const { raw, seal, shares } = await installation({ shares: n, threshold: t });
    const secured = barrier(raw, seal);
    let status = seal.status();
    for (const share of shares.slice(0, t - 1)) status = await seal.unseal(share);
    expect(status.sealed).toBe(true);
    expect(status.progress).toBe(t - 1);
    expect(status.nonce).not.toBe("");
    expect(seal.sealed).toBe(true);
    await storageErrorOf(secured.get("a"), StorageErrorCode.SEALED);
    await storageErrorOf(secured.put("a", Buffer.from("x")), StorageErrorCode.SEALED);
    await storageErrorOf(secured.list(""), StorageErrorCode.SEALED);
    await storageErrorOf(secured.exists("a"), StorageErrorCode.SEALED);
    // A different t-1 subset does not unseal either: still t-1 after reset and another try.
    seal.resetUnseal();
    for (const share of shares.slice(n - (t - 1))) status = await seal.unseal(share);
    expect(status).toMatchObject({ sealed: true, progress: t - 1 });
  });
});

// ---- duplicates ------------------------------------------------------------------------------

describe("Shamir: a share given twice is ignored", () => {
  test("the same share again, in any encoding, does not advance progress", async () => {
    const { raw, seal, shares } = await installation({ shares: 5, threshold: 3 });
    const first = at(shares, 0);
    const status = await seal.unseal(first);
    expectStatus(status, { sealed: true, progress: 1 });
    const nonce = status.nonce;
    expect(nonce).not.toBe("");

    const again: Array<string | Uint8Array> = [
      first,
      Buffer.from(first),
      new Uint8Array(first),
      first.toString("base64"),
      first.toString("hex"),
      first.toString("hex").toUpperCase(),
    ];
    for (const duplicate of again) {
      const after = await seal.unseal(duplicate);
      expect(after).toMatchObject({ sealed: true, progress: 1, nonce });
    }
    // Concurrently, too.
    await Promise.all([seal.unseal(first.toString("base64")), seal.unseal(first.toString("hex"))]);
    expect(seal.status()).toMatchObject({ sealed: true, progress: 1, nonce });

    // The next two distinct shares (and only they) complete the threshold.
    expectStatus(await seal.unseal(at(shares, 3).toString("hex")), { sealed: true, progress: 2, nonce });
    expectStatus(await seal.unseal(at(shares, 3)), { sealed: true, progress: 2, nonce });
    expectStatus(await seal.unseal(at(shares, 4).toString("base64")), { sealed: false, progress: 0, nonce: "" });
    await barrier(raw, seal).put("k", Buffer.from("v"));
  });
});

// ---- shares that do not open this installation -----------------------------------------------

describe("Shamir: wrong shares fail with one generic UNSEAL_FAILED", () => {
  test("a foreign share mixed in and a corrupted share fail with the same message, resetting progress", async () => {
    const mine = await installation({ shares: 5, threshold: 3 });
    const other = await installation({ shares: 5, threshold: 3 });
    const messages = new Set<string>();

    const attempt = async (given: Array<string | Uint8Array>): Promise<void> => {
      for (const share of given.slice(0, -1)) {
        const status = await mine.seal.unseal(share);
        expect(status.sealed).toBe(true);
      }
      const error = await sealErrorOf(mine.seal.unseal(at(given, given.length - 1)), SealErrorCode.UNSEAL_FAILED);
      messages.add(error.message);
      expect(mine.seal.status()).toEqual({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress: 0, nonce: "" });
    };

    const [s0, s1, s2] = [at(mine.shares, 0), at(mine.shares, 1), at(mine.shares, 2)];
    const foreign = at(other.shares, 0);
    // The foreign share first, in the middle and last, and in another encoding.
    await attempt([foreign, s1, s2]);
    await attempt([s0, foreign, s2]);
    await attempt([s0, s1, foreign.toString("base64")]);
    await attempt([s0, at(other.shares, 1).toString("hex"), at(other.shares, 2)]);

    // A corrupted share: one flipped bit in the y bytes.
    const flipped = Buffer.from(s1);
    flipped[0] = (flipped[0] ?? 0) ^ 0x01;
    await attempt([s0, flipped, s2]);
    // A corrupted x coordinate that collides with another given share (the library refuses it).
    const collidingX = Buffer.from(s1);
    collidingX[32] = s0[32] ?? 0;
    await attempt([s0, collidingX, s2]);

    expect([...messages]).toEqual([GENERIC_UNSEAL_FAILURE]);
    expect(mine.seal.sealed).toBe(true);

    // The right shares still unseal afterwards: nothing of the failed attempts lingers.
    await mine.seal.unseal(at(mine.shares, 4));
    await mine.seal.unseal(at(mine.shares, 2));
    expect((await mine.seal.unseal(at(mine.shares, 3))).sealed).toBe(false);
  });

  test("1-of-1: a foreign key fails like a corrupted one", async () => {
    const mine = await installation({ shares: 1, threshold: 1 });
    const other = await installation({ shares: 1, threshold: 1 });
    const key = at(mine.shares, 0);

    const foreign = await sealErrorOf(mine.seal.unseal(at(other.shares, 0)), SealErrorCode.UNSEAL_FAILED);
    const corrupted = Buffer.from(key);
    corrupted[31] = (corrupted[31] ?? 0) ^ 0x80;
    const bad = await sealErrorOf(mine.seal.unseal(corrupted.toString("base64")), SealErrorCode.UNSEAL_FAILED);
    const viaKey = await sealErrorOf(mine.seal.unsealWithKey(at(other.shares, 0)), SealErrorCode.UNSEAL_FAILED);
    expect(foreign.message).toBe(GENERIC_UNSEAL_FAILURE);
    expect(bad.message).toBe(foreign.message);
    expect(viaKey.message).toBe(foreign.message);
    expect(mine.seal.status()).toMatchObject({ sealed: true, progress: 0, nonce: "" });

    expect((await mine.seal.unseal(key.toString("hex"))).sealed).toBe(false);
  });
});

// ---- malformed shares ------------------------------------------------------------------------

const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/** Initialises until a share's base64 holds '+' or '/', so the URL-safe variant really differs. */
async function installationWithUrlUnsafeShare(
  scheme: ShareScheme,
): Promise<{ raw: StorageBackend; seal: SealManager; shares: Buffer[]; share: Buffer }> {
  for (let tries = 0; tries < 50; tries++) {
    const result = await installation(scheme);
    const share = result.shares.find((s) => /[+/]/.test(s.toString("base64")));
    if (share) return { ...result, share };
  }
  throw new Error("no share with '+' or '/' in 50 installations");
}

function urlSafe(base64: string): string {
  return base64.replace(/\+/g, "-").replace(/\//g, "_");
}

describe("Shamir: malformed shares are refused with INVALID_SHARE and progress is kept", () => {
  test("3 of 5 (33-byte shares): bad base64, wrong lengths, bad hex", async () => {
    const { raw, seal, shares, share: unsafe } = await installationWithUrlUnsafeShare({ shares: 5, threshold: 3 });
    const given = shares.find((s) => s !== unsafe) as Buffer;
    const status = await seal.unseal(given);
    expectStatus(status, { sealed: true, progress: 1 });
    const nonce = status.nonce;

    const b64 = unsafe.toString("base64");
    const hex = unsafe.toString("hex");
    expect(b64).toHaveLength(44); // 33 bytes: no padding
    const variants: Array<[string, string | Uint8Array]> = [
      ["wrong padding (=)", `${b64}=`],
      ["wrong padding (==)", `${b64}==`],
      ["wrong padding (====)", `${b64}====`],
      ["padding replacing data", `${b64.slice(0, -2)}==`],
      ["leading space", ` ${b64}`],
      ["trailing space", `${b64} `],
      ["trailing newline", `${b64}\n`],
      ["space inside", `${b64.slice(0, 20)} ${b64.slice(20)}`],
      ["tab inside", `${b64.slice(0, 20)}\t${b64.slice(20)}`],
      ["URL-safe alphabet", urlSafe(b64)],
      ["base64 of 32 bytes", unsafe.subarray(0, 32).toString("base64")],
      ["base64 of 34 bytes", Buffer.concat([unsafe, Buffer.from([1])]).toString("base64")],
      ["hex of 32 bytes", unsafe.subarray(0, 32).toString("hex")],
      ["hex of 34 bytes", Buffer.concat([unsafe, Buffer.from([1])]).toString("hex")],
      ["hex with one digit missing", hex.slice(0, -1)],
      ["hex with one digit extra", `${hex}0`],
      ["hex with a non-hex digit", `${hex.slice(0, -1)}g`],
      ["hex with 0x prefix", `0x${hex}`],
      ["hex with a space", `${hex.slice(0, 10)} ${hex.slice(10)}`],
      ["raw 32 bytes", unsafe.subarray(0, 32)],
      ["raw 34 bytes", Buffer.concat([unsafe, Buffer.from([1])])],
      ["raw 0 bytes", new Uint8Array(0)],
      ["empty string", ""],
    ];
    expect(urlSafe(b64)).not.toBe(b64);
    for (const [name, variant] of variants) {
      const error = await sealErrorOf(seal.unseal(variant), SealErrorCode.INVALID_SHARE);
      expect(error.message, name).not.toContain(b64);
      expect(error.message, name).not.toContain(hex);
      expect(seal.status(), name).toMatchObject({ sealed: true, progress: 1, nonce });
    }

    // The progress kept is the real one: two more shares (the url-unsafe one canonically) unseal.
    expectStatus(await seal.unseal(b64), { sealed: true, progress: 2, nonce });
    const third = shares.find((s) => s !== unsafe && s !== given) as Buffer;
    expectStatus(await seal.unseal(third), { sealed: false, progress: 0 });
    await barrier(raw, seal).put("k", Buffer.from("v"));
  });

  test("1 of 1 (32-byte key): missing or wrong padding, stray trailing bits, whitespace, URL-safe, wrong lengths", async () => {
    const { seal, share: key } = await installationWithUrlUnsafeShare({ shares: 1, threshold: 1 });
    const b64 = key.toString("base64");
    const hex = key.toString("hex");
    expect(b64).toHaveLength(44);
    expect(b64.endsWith("=")).toBe(true);
    expect(b64.endsWith("==")).toBe(false);

    // The last data character carries 4 bits of the key and 2 stray bits: flipping a stray bit
    // decodes to the same bytes, with different text.
    const lastDataChar = b64.charAt(42);
    const strayChar = BASE64_ALPHABET.charAt(BASE64_ALPHABET.indexOf(lastDataChar) ^ 0x01);
    const stray = `${b64.slice(0, 42)}${strayChar}=`;
    expect(stray).not.toBe(b64);
    expect(Buffer.from(stray, "base64")).toEqual(key);

    const variants: Array<[string, string | Uint8Array]> = [
      ["missing padding", b64.slice(0, -1)],
      ["extra padding", `${b64}=`],
      ["double padding", `${b64.slice(0, -1)}==`],
      ["padding replacing data", `${b64.slice(0, -2)}==`],
      ["stray trailing bits", stray],
      ["leading space", ` ${b64}`],
      ["trailing newline", `${b64}\n`],
      ["space inside", `${b64.slice(0, 10)} ${b64.slice(10)}`],
      ["URL-safe alphabet", urlSafe(b64)],
      ["URL-safe without padding", urlSafe(b64).slice(0, -1)],
      ["base64 of 33 bytes", Buffer.concat([key, Buffer.from([7])]).toString("base64")],
      ["base64 of 31 bytes", key.subarray(0, 31).toString("base64")],
      ["hex of 33 bytes", Buffer.concat([key, Buffer.from([7])]).toString("hex")],
      ["hex of 31 bytes", key.subarray(0, 31).toString("hex")],
      ["hex with one digit missing", hex.slice(0, -1)],
      ["hex with a non-hex digit", `${hex.slice(0, -1)}z`],
      ["raw 33 bytes", Buffer.concat([key, Buffer.from([7])])],
      ["raw 31 bytes", key.subarray(0, 31)],
    ];
    for (const [name, variant] of variants) {
      const error = await sealErrorOf(seal.unseal(variant), SealErrorCode.INVALID_SHARE);
      expect(error.message, name).not.toContain(b64);
      expect(seal.status(), name).toMatchObject({ sealed: true, progress: 0, nonce: "" });
    }
    // unsealWithKey decodes the same way.
    await sealErrorOf(seal.unsealWithKey(Buffer.concat([key, Buffer.from([7])])), SealErrorCode.INVALID_SHARE);
    expect((await seal.unseal(b64)).sealed).toBe(false);
  });
});

// ---- initialisation --------------------------------------------------------------------------

describe("initialize", () => {
  test("twice on the same manager, and from a second manager on the same file: ALREADY_INITIALIZED", async () => {
    const path = join(tempDir(), "egide.db");
    const rawA = SqliteBackend.open({ path });
    opened.push(rawA);
    const rawB = SqliteBackend.open({ path });
    opened.push(rawB);
    const a = await SealManager.open(rawA);
    const b = await SealManager.open(rawB);
    expect(b.status().initialized).toBe(false);

    const { shares } = await a.initialize({ shares: 3, threshold: 2 });
    const configBefore = await rawA.get(SEAL_CONFIG_KEY);
    expect(configBefore).not.toBeNull();

    await sealErrorOf(a.initialize({ shares: 3, threshold: 2 }), SealErrorCode.ALREADY_INITIALIZED);
    // B opened before A initialised: its own view is stale, the storage is the truth.
    await sealErrorOf(b.initialize({ shares: 1, threshold: 1 }), SealErrorCode.ALREADY_INITIALIZED);
    expect(await rawA.get(SEAL_CONFIG_KEY)).toEqual(configBefore);
    expect(b.status()).toEqual({ type: "shamir", initialized: true, sealed: true, t: 2, n: 3, progress: 0, nonce: "" });
    // A manager opened afterwards refuses too.
    const c = await SealManager.open(rawB);
    await sealErrorOf(c.initialize({ shares: 5, threshold: 3 }), SealErrorCode.ALREADY_INITIALIZED);

    // A's shares still open the installation through B.
    await b.unseal(at(shares, 2));
    expect((await b.unseal(at(shares, 0))).sealed).toBe(false);
  });

  const invalid: Array<[string, ShareScheme]> = [
    ["0 shares", { shares: 0, threshold: 0 }],
    ["0 shares, threshold 1", { shares: 0, threshold: 1 }],
    ["256 shares", { shares: 256, threshold: 2 }],
    ["256 of 256", { shares: 256, threshold: 256 }],
    ["negative shares", { shares: -1, threshold: 1 }],
    ["threshold > shares", { shares: 3, threshold: 4 }],
    ["threshold 0", { shares: 3, threshold: 0 }],
    ["negative threshold", { shares: 3, threshold: -2 }],
    ["threshold 1 with 3 shares", { shares: 3, threshold: 1 }],
    ["threshold 1 with 2 shares", { shares: 2, threshold: 1 }],
    ["non-integer shares", { shares: 2.5, threshold: 2 }],
    ["non-integer threshold", { shares: 5, threshold: 2.5 }],
    ["NaN shares", { shares: Number.NaN, threshold: 2 }],
    ["infinite shares", { shares: Number.POSITIVE_INFINITY, threshold: 2 }],
    ["string shares", { shares: "3" as unknown as number, threshold: 2 }],
  ];
  test.each(invalid)("invalid scheme (%s): INVALID_ARGUMENT, nothing written", async (_name, scheme) => {
    const raw = memory();
    const seal = await SealManager.open(raw);
    await sealErrorOf(seal.initialize(scheme), SealErrorCode.INVALID_ARGUMENT);
    expect(seal.status().initialized).toBe(false);
    expect(await raw.list("")).toEqual([]);
  });

  test("the extremes of valid schemes work: 255 shares with threshold 2, 2 of 2", async () => {
    const big = await installation({ shares: 255, threshold: 2 });
    expect(big.shares).toHaveLength(255);
    await big.seal.unseal(at(big.shares, 254));
    expect((await big.seal.unseal(at(big.shares, 100))).sealed).toBe(false);
  });

  test("unseal, unsealWithKey and autoUnseal before init fail with NOT_INITIALIZED", async () => {
    const raw = memory();
    const seal = await SealManager.open(raw);
    await sealErrorOf(seal.unseal(Buffer.alloc(33, 1)), SealErrorCode.NOT_INITIALIZED);
    await sealErrorOf(seal.unsealWithKey(Buffer.alloc(32, 1)), SealErrorCode.NOT_INITIALIZED);
    process.env.EGIDE_TEST_UNSEAL_BEFORE_INIT = Buffer.alloc(32, 2).toString("base64");
    try {
      await sealErrorOf(seal.autoUnseal({ env: "EGIDE_TEST_UNSEAL_BEFORE_INIT" }), SealErrorCode.NOT_INITIALIZED);
    } finally {
      delete process.env.EGIDE_TEST_UNSEAL_BEFORE_INIT;
    }
    expect(seal.status()).toEqual({ type: "shamir", initialized: false, sealed: true, t: 0, n: 0, progress: 0, nonce: "" });
  });

  test("a manager opened before another process initialised unseals once the config exists", async () => {
    const path = join(tempDir(), "egide.db");
    const rawA = SqliteBackend.open({ path });
    opened.push(rawA);
    const rawB = SqliteBackend.open({ path });
    opened.push(rawB);
    const late = await SealManager.open(rawB);
    await sealErrorOf(late.unseal(Buffer.alloc(33, 1)), SealErrorCode.NOT_INITIALIZED);
    const { shares } = await (await SealManager.open(rawA)).initialize({ shares: 2, threshold: 2 });
    await late.unseal(at(shares, 0));
    expect((await late.unseal(at(shares, 1))).sealed).toBe(false);
  });
});

// ---- status and reset ------------------------------------------------------------------------

describe("status and resetUnseal", () => {
  test("status() has Vault's shape at every stage", async () => {
    const raw = memory();
    const seal = await SealManager.open(raw);
    const keys = ["initialized", "n", "nonce", "progress", "sealed", "t", "type"];
    const before = seal.status();
    expect(Object.keys(before).sort()).toEqual(keys);
    expect(before).toEqual({ type: "shamir", initialized: false, sealed: true, t: 0, n: 0, progress: 0, nonce: "" });

    const { shares } = await seal.initialize({ shares: 5, threshold: 3 });
    expect(seal.status()).toEqual({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress: 0, nonce: "" });

    const one = await seal.unseal(at(shares, 0));
    expect(Object.keys(one).sort()).toEqual(keys);
    expect(one).toEqual({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress: 1, nonce: one.nonce });
    expect(one.nonce).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(seal.status()).toEqual(one);

    await seal.unseal(at(shares, 1));
    const done = await seal.unseal(at(shares, 2));
    expect(done).toEqual({ type: "shamir", initialized: true, sealed: false, t: 3, n: 5, progress: 0, nonce: "" });
    expect(seal.sealed).toBe(false);
    expect(seal.initialized).toBe(true);
    // A share after unsealing changes nothing.
    expect(await seal.unseal(at(shares, 3))).toEqual(done);

    seal.seal();
    expect(seal.status()).toEqual({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress: 0, nonce: "" });
  });

  test("resetUnseal() discards the shares given so far and the nonce", async () => {
    const { seal, shares } = await installation({ shares: 5, threshold: 3 });
    await seal.unseal(at(shares, 0));
    const two = await seal.unseal(at(shares, 1));
    expect(two.progress).toBe(2);

    const reset = seal.resetUnseal();
    expect(reset).toEqual({ type: "shamir", initialized: true, sealed: true, t: 3, n: 5, progress: 0, nonce: "" });
    expect(seal.status()).toEqual(reset);

    // The shares before the reset do not count: two new ones are progress 2, not 4.
    const again = await seal.unseal(at(shares, 2));
    expect(again.progress).toBe(1);
    expect(again.nonce).not.toBe(two.nonce);
    expect((await seal.unseal(at(shares, 3))).progress).toBe(2);
    expect(seal.sealed).toBe(true);
    expect((await seal.unseal(at(shares, 4))).sealed).toBe(false);
  });

  test("seal() during an unseal attempt clears its progress too", async () => {
    const { seal, shares } = await installation({ shares: 3, threshold: 2 });
    await seal.unseal(at(shares, 0));
    seal.seal();
    expect(seal.status()).toMatchObject({ progress: 0, nonce: "" });
    expect((await seal.unseal(at(shares, 1))).sealed).toBe(true);
  });
});

// ---- auto-unseal -----------------------------------------------------------------------------

describe("auto-unseal", () => {
  test("writeUnsealKeyFile then autoUnseal({ file }) unseals; the file is 0600 and never overwritten", async () => {
    const { seal, shares } = await installation({ shares: 1, threshold: 1 });
    const key = at(shares, 0);
    const file = join(tempDir(), "unseal.key");
    await writeUnsealKeyFile(file, key);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, "utf8")).toBe(`${key.toString("base64")}\n`);

    const status = await seal.autoUnseal({ file });
    expect(status).toMatchObject({ sealed: false, t: 1, n: 1 });

    // Refuses to overwrite, and leaves the existing key untouched.
    const other = Buffer.alloc(32, 0x42);
    await expect(writeUnsealKeyFile(file, other)).rejects.toMatchObject({ code: "EEXIST" });
    expect(readFileSync(file, "utf8")).toBe(`${key.toString("base64")}\n`);
  });

  test("a key file readable by group or others is refused with UNSEAL_KEY_SOURCE", async () => {
    const { seal, shares } = await installation({ shares: 1, threshold: 1 });
    const key = at(shares, 0);
    const file = join(tempDir(), "unseal.key");
    await writeUnsealKeyFile(file, key);
    for (const mode of [0o644, 0o640, 0o604, 0o660]) {
      chmodSync(file, mode);
      const error = await sealErrorOf(seal.autoUnseal({ file }), SealErrorCode.UNSEAL_KEY_SOURCE);
      expect(error.message).toContain(file);
      expect(error.message).not.toContain(key.toString("base64"));
      expect(error.message).not.toContain(key.toString("hex"));
      expect(seal.sealed).toBe(true);
    }
    chmodSync(file, 0o400);
    expect((await seal.autoUnseal({ file })).sealed).toBe(false);
  });

  test("a missing key file, a directory, or a file without a key is refused with UNSEAL_KEY_SOURCE", async () => {
    const { seal } = await installation({ shares: 1, threshold: 1 });
    const dir = tempDir();
    await sealErrorOf(seal.autoUnseal({ file: join(dir, "absent.key") }), SealErrorCode.UNSEAL_KEY_SOURCE);
    chmodSync(dir, 0o700);
    await sealErrorOf(seal.autoUnseal({ file: dir }), SealErrorCode.UNSEAL_KEY_SOURCE);
    const short = join(dir, "short.key");
    await writeUnsealKeyFile(short, Buffer.alloc(31, 3));
    await sealErrorOf(seal.autoUnseal({ file: short }), SealErrorCode.UNSEAL_KEY_SOURCE);
    expect(seal.sealed).toBe(true);
  });

  test("autoUnseal({ env }) works with base64 and hex, and refuses garbage, empty and unset variables", async () => {
    const { seal, shares } = await installation({ shares: 1, threshold: 1 });
    const key = at(shares, 0);
    const name = "EGIDE_TEST_UNSEAL_KEY_ENV";
    try {
      for (const garbage of ["not a key", "%%%%", key.toString("base64").slice(0, -4), urlSafe(`${key.toString("hex")}00`), ""]) {
        process.env[name] = garbage;
        await sealErrorOf(seal.autoUnseal({ env: name }), SealErrorCode.UNSEAL_KEY_SOURCE);
        expect(seal.sealed).toBe(true);
      }
      delete process.env[name];
      const unset = await sealErrorOf(seal.autoUnseal({ env: name }), SealErrorCode.UNSEAL_KEY_SOURCE);
      expect(unset.message).toContain(name);

      process.env[name] = key.toString("base64");
      expect((await seal.autoUnseal({ env: name })).sealed).toBe(false);
      seal.seal();
      process.env[name] = `${key.toString("hex")}\n`;
      expect((await seal.autoUnseal({ env: name })).sealed).toBe(false);
    } finally {
      delete process.env[name];
    }
  });

  test("a foreign key through autoUnseal fails with the generic UNSEAL_FAILED", async () => {
    const { seal } = await installation({ shares: 1, threshold: 1 });
    const other = await installation({ shares: 1, threshold: 1 });
    const name = "EGIDE_TEST_UNSEAL_KEY_FOREIGN";
    process.env[name] = at(other.shares, 0).toString("base64");
    try {
      const error = await sealErrorOf(seal.autoUnseal({ env: name }), SealErrorCode.UNSEAL_FAILED);
      expect(error.message).toBe(GENERIC_UNSEAL_FAILURE);
    } finally {
      delete process.env[name];
    }
    expect(seal.status()).toMatchObject({ sealed: true, progress: 0, nonce: "" });
  });

  test("on a 3-of-5 installation unsealWithKey and autoUnseal are refused with INVALID_ARGUMENT", async () => {
    const { seal, shares } = await installation({ shares: 5, threshold: 3 });
    await seal.unseal(at(shares, 0));
    const nonce = seal.status().nonce;
    await sealErrorOf(seal.unsealWithKey(Buffer.alloc(32, 9)), SealErrorCode.INVALID_ARGUMENT);
    // Even a real share is not an unseal key.
    await sealErrorOf(seal.unsealWithKey(at(shares, 1)), SealErrorCode.INVALID_ARGUMENT);
    const file = join(tempDir(), "unseal.key");
    await writeUnsealKeyFile(file, Buffer.alloc(32, 9));
    await sealErrorOf(seal.autoUnseal({ file }), SealErrorCode.INVALID_ARGUMENT);
    // The progress of the Shamir attempt is untouched.
    expect(seal.status()).toMatchObject({ sealed: true, progress: 1, nonce });
  });
});
