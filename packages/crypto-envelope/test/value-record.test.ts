/**
 * The record format: value records (`sealValue`, `openValue`, `rewrapValue`,
 * `valueKeyVersion`), sealed system records (`sealSystemRecord`, `openSystemRecord`) and the
 * keyring's refusal of unknown and retired key versions (`Keyring`).
 *
 * Golden records: `test/fixtures/golden-records.json` is written by
 * `node test/fixtures/generate-golden-records.mjs` (fixed key 00..1f, `deterministicRandom`
 * seed "golden", one stream shared by all records in fixture order). These tests regenerate
 * every record and require byte equality, decrypt each with the package and again with plain
 * `node:crypto` from the documented layout, so neither the bytes nor the layout can drift
 * without a failing test. Regenerate the fixture only for a deliberate format change.
 *
 * Refusals: every single-bit flip, every truncation, short input, unknown format bytes, a
 * wrong record type, a record moved or swapped to another storage key, an edited key version
 * and appended bytes all fail as `CORRUPT` and never return plaintext. `rewrapValue` keeps the
 * value nonce, ciphertext and tag byte-identical and never turns a corrupt record into a valid
 * one.
 */
import { createDecipheriv, createHmac } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { HkdfLabel, deriveKey, versionContext } from "../src/hkdf.js";
import { KEYRING_FORMAT, Keyring } from "../src/keyring.js";
import type { KeyringState } from "../src/keyring.js";
import { systemRandom } from "../src/random-source.js";
import {
  HEADER_BYTES,
  RECORD_FORMAT_V1,
  RecordType,
  SEALED_RECORD_OVERHEAD,
  SealedLayout,
  VALUE_RECORD_OVERHEAD,
  ValueLayout,
} from "../src/record-format.js";
import { KEYRING_KEY } from "../src/reserved-keys.js";
import { openSystemRecord, sealSystemRecord } from "../src/sealed-record.js";
import { SecretBytes } from "../src/secret-bytes.js";
import { openValue, rewrapValue, sealValue, valueKeyVersion } from "../src/value-record.js";
import type { VersionedKey } from "../src/value-record.js";
import { deterministicRandom, recordingRandom } from "./support/deterministic-random.js";
import { expectThrownStorageError as expectStorageError } from "./support/expect-errors.js";

// ---- helpers -----------------------------------------------------------------------------------

const hex = (text: string): Buffer => Buffer.from(text, "hex");
const bytesFrom = (start: number, length = 32): Buffer => Buffer.from(Array.from({ length }, (_, i) => (start + i) & 0xff));

const expectCorrupt = (fn: () => unknown, message?: RegExp): void => expectStorageError(fn, StorageErrorCode.CORRUPT, message);

/** What `fn` did, when it did anything but throw CORRUPT; `undefined` when it threw CORRUPT. */
function unlessCorrupt(fn: () => unknown): string | undefined {
  try {
    const result = fn();
    return `returned ${Buffer.isBuffer(result) ? `0x${result.toString("hex")}` : String(result)}`;
  } catch (error) {
    return StorageError.isInstance(error, StorageErrorCode.CORRUPT) ? undefined : `threw ${String(error)}`;
  }
}

/**
 * A `keyFor` like `Keyring.keyFor`: the key of a known version, `CORRUPT` for any other.
 */
function keysFor(keys: Record<number, Uint8Array>): (version: number) => Uint8Array {
  return (version) => {
    const key = keys[version];
    if (!key) throw new StorageError(StorageErrorCode.CORRUPT, `record is encrypted under unknown key version ${version}`);
    return key;
  };
}

function withVersion(record: Uint8Array, version: number): Buffer {
  const edited = Buffer.from(record);
  edited.writeUInt32BE(version, 2);
  return edited;
}

function withByte(record: Uint8Array, index: number, value: number): Buffer {
  const edited = Buffer.from(record);
  edited[index] = value;
  return edited;
}

function withBitFlipped(record: Uint8Array, bit: number): Buffer {
  const edited = Buffer.from(record);
  edited[bit >> 3] = (edited[bit >> 3] ?? 0) ^ (1 << (bit & 7));
  return edited;
}

/** The raw bytes of a record key, whether it is held as bytes or as a KeyObject. */
function keyBytes(key: VersionedKey["key"]): Buffer {
  return key instanceof Uint8Array ? Buffer.from(key) : (key as KeyObject).export();
}

/** AES-256-GCM decryption straight from node:crypto, independent of the package's wrapper. */
function nodeGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, tag: Uint8Array, aad: Uint8Array): Buffer {
  const decipher = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: 16 });
  decipher.setAAD(aad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

/** HKDF-SHA256 written out from RFC 5869 with HMAC, independent of the package's `hkdfSha256`. */
function rfc5869(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  const prk = createHmac("sha256", salt).update(ikm).digest();
  const blocks: Buffer[] = [];
  let previous = Buffer.alloc(0);
  for (let i = 1; blocks.length * 32 < length; i++) {
    previous = createHmac("sha256", prk)
      .update(Buffer.concat([previous, info, Buffer.from([i])]))
      .digest();
    blocks.push(previous);
  }
  return Buffer.concat(blocks).subarray(0, length);
}

// ---- golden records ----------------------------------------------------------------------------

interface GoldenValue {
  name: string;
  storageKey: string;
  version: number;
  plaintext: string;
  record: string;
}

interface GoldenSystemRecord {
  name: string;
  type: number;
  storageKey: string;
  plaintext: string;
  record: string;
}

interface GoldenFixture {
  comment: string;
  seed: string;
  encryptionKey: string;
  values: GoldenValue[];
  systemRecords: GoldenSystemRecord[];
}

const fixture = JSON.parse(readFileSync(new URL("./fixtures/golden-records.json", import.meta.url), "utf8")) as GoldenFixture;
const goldenKey = hex(fixture.encryptionKey);
const goldenKeyFor = keysFor(Object.fromEntries(fixture.values.map((v) => [v.version, goldenKey])));

function recordType(value: number): RecordType {
  const known: readonly number[] = Object.values(RecordType);
  if (!known.includes(value)) throw new Error(`fixture names unknown record type ${value}`);
  return value as RecordType;
}

describe("golden records", () => {
  it("cover the required cases: key 00..1f, seed golden, empty, 1-byte, UTF-8 key, 300 bytes, version 7, a keyring record", () => {
    expect(fixture.encryptionKey).toBe(bytesFrom(0).toString("hex"));
    expect(fixture.seed).toBe("golden");
    const lengths = fixture.values.map((v) => hex(v.plaintext).byteLength);
    expect(lengths).toContain(0);
    expect(lengths).toContain(1);
    expect(lengths).toContain(300);
    expect(fixture.values.map((v) => v.storageKey)).toContain("secret/é/😀");
    expect(new Set(fixture.values.map((v) => v.version))).toEqual(new Set([1, 7]));
    expect(fixture.systemRecords.map((s) => s.type)).toContain(RecordType.KEYRING);
    expect(fixture.systemRecords.find((s) => s.type === RecordType.KEYRING)?.storageKey).toBe(KEYRING_KEY);
  });

  it("regenerate byte for byte from the same key and deterministic random stream", () => {
    const random = deterministicRandom(fixture.seed);
    const values = fixture.values.map((v) => ({
      name: v.name,
      record: sealValue(v.storageKey, hex(v.plaintext), { version: v.version, key: goldenKey }, random).toString("hex"),
    }));
    const systemRecords = fixture.systemRecords.map((s) => ({
      name: s.name,
      record: sealSystemRecord(recordType(s.type), s.storageKey, hex(s.plaintext), goldenKey, random).toString("hex"),
    }));
    expect(values).toEqual(fixture.values.map((v) => ({ name: v.name, record: v.record })));
    expect(systemRecords).toEqual(fixture.systemRecords.map((s) => ({ name: s.name, record: s.record })));
  });

  it.each(fixture.values.map((v) => [v.name, v] as const))("value record %s opens with openValue to its plaintext", (_name, golden) => {
    const opened = openValue(golden.storageKey, hex(golden.record), goldenKeyFor);
    expect(opened.toString("hex")).toBe(golden.plaintext);
  });

  it.each(fixture.systemRecords.map((s) => [s.name, s] as const))(
    "system record %s opens with openSystemRecord to its plaintext",
    (_name, golden) => {
      const opened = openSystemRecord(recordType(golden.type), golden.storageKey, hex(golden.record), goldenKey);
      expect(opened.toString("hex")).toBe(golden.plaintext);
    },
  );

  it("use the documented layout constants", () => {
    expect(RECORD_FORMAT_V1).toBe(0x01);
    expect(RecordType).toEqual({ VALUE: 0x01, ROOT_KEY: 0x02, KEYRING: 0x03, REWRAP_PROGRESS: 0x04 });
    expect(HEADER_BYTES).toBe(6);
    expect(ValueLayout).toEqual({ WRAP_NONCE: 6, WRAPPED_DEK: 18, WRAP_TAG: 50, VALUE_NONCE: 66, CIPHERTEXT: 78 });
    expect(VALUE_RECORD_OVERHEAD).toBe(94);
    expect(SealedLayout).toEqual({ NONCE: 6, CIPHERTEXT: 18 });
    expect(SEALED_RECORD_OVERHEAD).toBe(34);
  });

  it.each(fixture.values.map((v) => [v.name, v] as const))(
    "value record %s: format 0x01, type VALUE, big-endian key version, 94 + plaintext bytes",
    (_name, golden) => {
      const record = hex(golden.record);
      expect(record[0]).toBe(0x01);
      expect(record[1]).toBe(RecordType.VALUE);
      expect(record.subarray(2, 6).toString("hex")).toBe(golden.version.toString(16).padStart(8, "0"));
      expect(record.readUInt32BE(2)).toBe(golden.version);
      expect(record.byteLength).toBe(94 + hex(golden.plaintext).byteLength);
      expect(valueKeyVersion(record)).toBe(golden.version);
    },
  );

  it.each(fixture.systemRecords.map((s) => [s.name, s] as const))(
    "system record %s: format 0x01, its type, key version 0, 34 + plaintext bytes",
    (_name, golden) => {
      const record = hex(golden.record);
      expect(record[0]).toBe(0x01);
      expect(record[1]).toBe(golden.type);
      expect(record.readUInt32BE(2)).toBe(0);
      expect(record.byteLength).toBe(34 + hex(golden.plaintext).byteLength);
    },
  );

  it.each(fixture.values.map((v) => [v.name, v] as const))(
    "value record %s decrypts with plain node:crypto from the documented layout and associated data",
    (_name, golden) => {
      const record = hex(golden.record);
      const storageKey = Buffer.from(golden.storageKey, "utf8");
      // DEK wrap: nonce 6..18, wrapped DEK 18..50, tag 50..66, AAD = header (6 bytes) ‖ storage key.
      const dek = nodeGcmDecrypt(
        goldenKey,
        record.subarray(6, 18),
        record.subarray(18, 50),
        record.subarray(50, 66),
        Buffer.concat([record.subarray(0, 6), storageKey]),
      );
      expect(dek.byteLength).toBe(32);
      // Value: nonce 66..78, ciphertext 78..end-16, tag last 16, AAD = format ‖ type ‖ storage key (no version).
      const end = record.byteLength - 16;
      const plaintext = nodeGcmDecrypt(
        dek,
        record.subarray(66, 78),
        record.subarray(78, end),
        record.subarray(end),
        Buffer.concat([record.subarray(0, 2), storageKey]),
      );
      expect(plaintext.toString("hex")).toBe(golden.plaintext);
    },
  );

  it.each(fixture.systemRecords.map((s) => [s.name, s] as const))(
    "system record %s decrypts with plain node:crypto from the documented layout and associated data",
    (_name, golden) => {
      const record = hex(golden.record);
      // Nonce 6..18, ciphertext 18..end-16, tag last 16, AAD = header ‖ storage key ‖ extra AAD (none).
      const end = record.byteLength - 16;
      const aad = Buffer.concat([record.subarray(0, 6), Buffer.from(golden.storageKey, "utf8")]);
      const plaintext = nodeGcmDecrypt(goldenKey, record.subarray(6, 18), record.subarray(18, end), record.subarray(end), aad);
      expect(plaintext.toString("hex")).toBe(golden.plaintext);
    },
  );
});

// ---- value record refusals ---------------------------------------------------------------------

const key1 = bytesFrom(0x00);
const key2 = bytesFrom(0x40);
const keyFor = keysFor({ 1: key1, 2: key2 });
const plaintext40 = Buffer.from("forty bytes of plaintext for bit flips!!", "utf8");

function seal(storageKey: string, plaintext: Uint8Array = plaintext40, version = 1, seed = `seal:${storageKey}`): Buffer {
  return sealValue(storageKey, plaintext, { version, key: version === 2 ? key2 : key1 }, deterministicRandom(seed));
}

describe("openValue refusals", () => {
  const storageKey = "app/bits";
  const record = seal(storageKey);

  it("opens the untouched record (baseline for the refusals below)", () => {
    expect(plaintext40.byteLength).toBe(40);
    expect(record.byteLength).toBe(VALUE_RECORD_OVERHEAD + 40);
    expect(openValue(storageKey, record, keyFor).equals(plaintext40)).toBe(true);
  });

  it("refuses every single-bit flip, at every bit of every byte, as CORRUPT", () => {
    const failures: string[] = [];
    for (let bit = 0; bit < record.byteLength * 8; bit++) {
      const outcome = unlessCorrupt(() => openValue(storageKey, withBitFlipped(record, bit), keyFor));
      if (outcome) failures.push(`byte ${bit >> 3} bit ${bit & 7}: ${outcome}`);
    }
    expect(record.byteLength * 8).toBe(1072);
    expect(failures).toEqual([]);
  });

  it("refuses the record truncated to every shorter length as CORRUPT", () => {
    const failures: string[] = [];
    for (let length = 0; length < record.byteLength; length++) {
      const outcome = unlessCorrupt(() => openValue(storageKey, record.subarray(0, length), keyFor));
      if (outcome) failures.push(`length ${length}: ${outcome}`);
    }
    expect(failures).toEqual([]);
  });

  it("refuses every input of 0..93 bytes as CORRUPT, even with a valid header", () => {
    for (let length = 0; length < VALUE_RECORD_OVERHEAD; length++) {
      const short = Buffer.alloc(length);
      record.copy(short, 0, 0, Math.min(length, HEADER_BYTES));
      expectCorrupt(() => openValue(storageKey, short, keyFor), /shorter than the 94/);
      expectCorrupt(() => valueKeyVersion(short), /shorter than the 94/);
    }
  });

  const asHex = (values: number[]): { label: string; byte: number }[] =>
    values.map((byte) => ({ label: `0x${byte.toString(16).padStart(2, "0")}`, byte }));

  it.each(asHex([0x00, 0x02, 0xff]))("refuses format byte $label as CORRUPT, naming the unknown format", ({ byte: format }) => {
    const edited = withByte(record, 0, format);
    expectCorrupt(() => openValue(storageKey, edited, keyFor), /unknown record format/);
    expectCorrupt(() => valueKeyVersion(edited), /unknown record format/);
  });

  it.each(asHex([RecordType.ROOT_KEY, RecordType.KEYRING, RecordType.REWRAP_PROGRESS, 0x00, 0xff]))(
    "refuses record type $label in a value record as CORRUPT",
    ({ byte: type }) => {
      expectCorrupt(() => openValue(storageKey, withByte(record, 1, type), keyFor), /record type/);
    },
  );

  it("refuses a sealed system record read as a value record, and a value record read as a system record", () => {
    const system = sealSystemRecord(RecordType.KEYRING, storageKey, Buffer.alloc(100, 0x33), key1, deterministicRandom("system"));
    expect(system.byteLength).toBeGreaterThanOrEqual(VALUE_RECORD_OVERHEAD);
    expectCorrupt(() => openValue(storageKey, system, keyFor), /record type/);
    expectCorrupt(() => openSystemRecord(RecordType.KEYRING, storageKey, record, key1), /record type/);
  });

  it.each(["app/other", "app/bits/", "App/bits", "app/bit", "", "app/bits\0"])(
    "refuses the record moved to storage key %j as CORRUPT",
    (movedTo) => {
      expectCorrupt(() => openValue(movedTo, record, keyFor));
    },
  );

  it("binds the storage key's exact UTF-8 bytes (NFC and NFD spellings differ)", () => {
    const nfc = "secret/\u00e9/😀";
    const nfd = "secret/e\u0301/😀";
    const utf8Record = seal(nfc);
    expect(openValue(nfc, utf8Record, keyFor).equals(plaintext40)).toBe(true);
    expectCorrupt(() => openValue(nfd, utf8Record, keyFor));
  });

  it("refuses two records swapped between their storage keys, both ways", () => {
    const a = seal("app/a", Buffer.from("value of a"));
    const b = seal("app/b", Buffer.from("value of b"));
    expect(openValue("app/a", a, keyFor).toString()).toBe("value of a");
    expect(openValue("app/b", b, keyFor).toString()).toBe("value of b");
    expectCorrupt(() => openValue("app/a", b, keyFor));
    expectCorrupt(() => openValue("app/b", a, keyFor));
  });

  it("refuses a record spliced from the DEK wrap of one write and the value of another to the same key", () => {
    const first = seal("app/splice", Buffer.from("first value!"), 1, "first");
    const second = seal("app/splice", Buffer.from("second value"), 1, "second");
    const spliced = Buffer.concat([first.subarray(0, ValueLayout.VALUE_NONCE), second.subarray(ValueLayout.VALUE_NONCE)]);
    expectCorrupt(() => openValue("app/splice", spliced, keyFor));
  });

  it("refuses a key version edited to another known version with a different key as CORRUPT", () => {
    expectCorrupt(() => openValue(storageKey, withVersion(record, 2), keyFor));
  });

  it("refuses a key version edited to another known version even when that version had the same key (the header is authenticated)", () => {
    expectCorrupt(() => openValue(storageKey, withVersion(record, 2), keysFor({ 1: key1, 2: key1 })));
  });

  it.each([0, 3, 9, 0x01000001, 0xffffffff])("refuses a key version edited to unknown version %i as CORRUPT", (version) => {
    expectCorrupt(() => openValue(storageKey, withVersion(record, version), keyFor), /unknown key version/);
    expect(valueKeyVersion(withVersion(record, version))).toBe(version);
  });

  it.each([1, 16, 100])("refuses the record with %i bytes appended as CORRUPT", (extra) => {
    expectCorrupt(() => openValue(storageKey, Buffer.concat([record, Buffer.alloc(extra, 0xaa)]), keyFor));
    expectCorrupt(() => openValue(storageKey, Buffer.concat([record, record.subarray(record.byteLength - extra)]), keyFor));
  });

  it("refuses a record opened with the wrong encryption key as CORRUPT", () => {
    expectCorrupt(() => openValue(storageKey, record, keysFor({ 1: key2 })));
  });

  it("wipes the DEK it drew from the random source before returning", () => {
    const random = recordingRandom();
    const sealed = sealValue(storageKey, plaintext40, { version: 1, key: key1 }, random);
    expect(openValue(storageKey, sealed, keyFor).equals(plaintext40)).toBe(true);
    const deks = random.filled.filter((buffer) => buffer.byteLength === 32);
    expect(deks).toHaveLength(1);
    expect(deks[0]?.every((byte) => byte === 0)).toBe(true);
  });

  it("seals the same value to different bytes each time with the system random source, and both open", () => {
    const one = sealValue(storageKey, plaintext40, { version: 1, key: key1 }, systemRandom);
    const two = sealValue(storageKey, plaintext40, { version: 1, key: key1 }, systemRandom);
    expect(one.equals(two)).toBe(false);
    expect(
      one.subarray(ValueLayout.WRAP_NONCE, ValueLayout.WRAPPED_DEK).equals(two.subarray(ValueLayout.WRAP_NONCE, ValueLayout.WRAPPED_DEK)),
    ).toBe(false);
    expect(
      one.subarray(ValueLayout.VALUE_NONCE, ValueLayout.CIPHERTEXT).equals(two.subarray(ValueLayout.VALUE_NONCE, ValueLayout.CIPHERTEXT)),
    ).toBe(false);
    expect(openValue(storageKey, one, keyFor).equals(plaintext40)).toBe(true);
    expect(openValue(storageKey, two, keyFor).equals(plaintext40)).toBe(true);
  });
});

describe("openSystemRecord refusals", () => {
  const golden = fixture.systemRecords[0];
  if (!golden) throw new Error("the golden fixture has no system record");
  const type = recordType(golden.type);
  const record = hex(golden.record);

  it("refuses every single-bit flip of the golden keyring record as CORRUPT", () => {
    const failures: string[] = [];
    for (let bit = 0; bit < record.byteLength * 8; bit++) {
      const outcome = unlessCorrupt(() => openSystemRecord(type, golden.storageKey, withBitFlipped(record, bit), goldenKey));
      if (outcome) failures.push(`byte ${bit >> 3} bit ${bit & 7}: ${outcome}`);
    }
    expect(failures).toEqual([]);
  });

  it("refuses every truncation, appended bytes, another storage key, another type and another key as CORRUPT", () => {
    for (let length = 0; length < record.byteLength; length++) {
      expectCorrupt(() => openSystemRecord(type, golden.storageKey, record.subarray(0, length), goldenKey));
    }
    expectCorrupt(() => openSystemRecord(type, golden.storageKey, Buffer.concat([record, Buffer.from([0])]), goldenKey));
    expectCorrupt(() => openSystemRecord(type, `${golden.storageKey}x`, record, goldenKey));
    expectCorrupt(() => openSystemRecord(RecordType.REWRAP_PROGRESS, golden.storageKey, record, goldenKey), /record type/);
    expectCorrupt(() => openSystemRecord(type, golden.storageKey, record, key2));
  });

  it("binds the extra associated data (as the root key record binds the seal configuration)", () => {
    const extra = Buffer.from("seal configuration", "utf8");
    const sealed = sealSystemRecord(RecordType.ROOT_KEY, "root", Buffer.alloc(32, 7), key1, deterministicRandom("root"), extra);
    expect(openSystemRecord(RecordType.ROOT_KEY, "root", sealed, key1, extra).equals(Buffer.alloc(32, 7))).toBe(true);
    expectCorrupt(() => openSystemRecord(RecordType.ROOT_KEY, "root", sealed, key1));
    expectCorrupt(() => openSystemRecord(RecordType.ROOT_KEY, "root", sealed, key1, Buffer.from("seal configuratioN", "utf8")));
  });
});

// ---- rewrap ------------------------------------------------------------------------------------

describe("rewrapValue", () => {
  const storageKey = "app/rewrap";
  const record = seal(storageKey);
  const original = Buffer.from(record);
  const oldKeys = keysFor({ 1: key1 });
  const newKeys = keysFor({ 2: key2 });
  const rewrapped = rewrapValue(storageKey, record, oldKeys, { version: 2, key: key2 }, deterministicRandom("rewrap"));

  it("keeps the value nonce, ciphertext and tag (offset 66 onward) byte-identical", () => {
    expect(ValueLayout.VALUE_NONCE).toBe(66);
    expect(rewrapped.byteLength).toBe(record.byteLength);
    expect(rewrapped.subarray(66).equals(record.subarray(66))).toBe(true);
  });

  it("writes the new key version into the header and a new wrap nonce, wrapped DEK and wrap tag", () => {
    expect(rewrapped.subarray(0, 2).equals(record.subarray(0, 2))).toBe(true);
    expect(rewrapped.subarray(2, 6).toString("hex")).toBe("00000002");
    expect(valueKeyVersion(rewrapped)).toBe(2);
    for (const [start, end] of [
      [ValueLayout.WRAP_NONCE, ValueLayout.WRAPPED_DEK],
      [ValueLayout.WRAPPED_DEK, ValueLayout.WRAP_TAG],
      [ValueLayout.WRAP_TAG, ValueLayout.VALUE_NONCE],
    ] as const) {
      expect(rewrapped.subarray(start, end).equals(record.subarray(start, end)), `bytes ${start}..${end}`).toBe(false);
    }
  });

  it("leaves the input record untouched", () => {
    expect(record.equals(original)).toBe(true);
    expect(openValue(storageKey, record, oldKeys).equals(plaintext40)).toBe(true);
  });

  it("opens under the new key only", () => {
    expect(openValue(storageKey, rewrapped, newKeys).equals(plaintext40)).toBe(true);
    expectCorrupt(() => openValue(storageKey, rewrapped, oldKeys), /unknown key version 2/);
    expectCorrupt(() => openValue(storageKey, rewrapped, keysFor({ 2: key1 })));
    expectCorrupt(() => openValue(storageKey, withVersion(rewrapped, 1), keysFor({ 1: key1, 2: key2 })));
  });

  it("keeps the rewrapped record bound to its storage key", () => {
    expectCorrupt(() => openValue("app/elsewhere", rewrapped, newKeys));
  });

  it.each(fixture.values.map((v) => [v.name, v] as const))("rewraps golden record %s and keeps its value bytes", (_name, golden) => {
    const source = hex(golden.record);
    const target = rewrapValue(golden.storageKey, source, goldenKeyFor, { version: 2, key: key2 }, deterministicRandom("rewrap-golden"));
    expect(target.subarray(ValueLayout.VALUE_NONCE).equals(source.subarray(ValueLayout.VALUE_NONCE))).toBe(true);
    expect(openValue(golden.storageKey, target, newKeys).toString("hex")).toBe(golden.plaintext);
  });

  it("refuses a record moved to another storage key (it cannot be laundered by rewrapping it there)", () => {
    expectCorrupt(() => rewrapValue("app/elsewhere", record, oldKeys, { version: 2, key: key2 }, deterministicRandom("r")));
  });

  it("refuses a record under the wrong old key or an unknown version", () => {
    expectCorrupt(() => rewrapValue(storageKey, record, keysFor({ 1: key2 }), { version: 2, key: key2 }, deterministicRandom("r")));
    expectCorrupt(
      () => rewrapValue(storageKey, withVersion(record, 9), oldKeys, { version: 2, key: key2 }, deterministicRandom("r")),
      /unknown key version 9/,
    );
  });

  it("refuses every single-bit flip of the header or DEK wrap (bytes 0..65) as CORRUPT", () => {
    const failures: string[] = [];
    for (let bit = 0; bit < ValueLayout.VALUE_NONCE * 8; bit++) {
      const outcome = unlessCorrupt(() =>
        rewrapValue(storageKey, withBitFlipped(record, bit), oldKeys, { version: 2, key: key2 }, deterministicRandom("r")),
      );
      if (outcome) failures.push(`byte ${bit >> 3} bit ${bit & 7}: ${outcome}`);
    }
    expect(failures).toEqual([]);
  });

  it("never repairs a corrupted record: any flip or truncation either fails CORRUPT or stays unreadable after the rewrap", () => {
    const failures: string[] = [];
    const check = (label: string, corrupted: Buffer): void => {
      let result: Buffer;
      try {
        result = rewrapValue(storageKey, corrupted, oldKeys, { version: 2, key: key2 }, deterministicRandom("r"));
      } catch (error) {
        if (!StorageError.isInstance(error, StorageErrorCode.CORRUPT)) failures.push(`${label}: rewrap threw ${String(error)}`);
        return;
      }
      const outcome = unlessCorrupt(() => openValue(storageKey, result, newKeys));
      if (outcome) failures.push(`${label}: the rewrapped record ${outcome}`);
    };
    for (let bit = 0; bit < record.byteLength * 8; bit++) check(`byte ${bit >> 3} bit ${bit & 7}`, withBitFlipped(record, bit));
    for (let length = 0; length < record.byteLength; length++) check(`length ${length}`, record.subarray(0, length));
    check("1 byte appended", Buffer.concat([record, Buffer.from([0])]));
    expect(failures).toEqual([]);
  });
});

// ---- keyring -----------------------------------------------------------------------------------

describe("Keyring key refusal", () => {
  const salt = Buffer.alloc(32, 0x5c);
  const masterBytes = (): Buffer => Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 ^ i));

  function makeKeyring(): { keyring: Keyring; master: SecretBytes } {
    const state: KeyringState = {
      format: KEYRING_FORMAT,
      generation: 3,
      active: 3,
      versions: [
        { version: 1, state: "retired", createdAt: 1_700_000_000_000, encryptions: 10 },
        { version: 2, state: "decrypt", createdAt: 1_700_000_100_000, encryptions: 20 },
        { version: 3, state: "active", createdAt: 1_700_000_200_000, encryptions: 30 },
      ],
    };
    const master = new SecretBytes(masterBytes());
    return { keyring: new Keyring(state, master, salt), master };
  }

  it("refuses a retired version as CORRUPT, naming it retired", () => {
    const { keyring } = makeKeyring();
    expectCorrupt(() => keyring.keyFor(1), /retired/);
  });

  it.each([0, 4, 9, 0xffffffff])("refuses unknown version %i as CORRUPT, naming it unknown", (version) => {
    const { keyring } = makeKeyring();
    expectCorrupt(() => keyring.keyFor(version), /unknown/);
  });

  it("reports what lookup found for each version", () => {
    const { keyring } = makeKeyring();
    expect(keyring.lookup(1)).toEqual({ kind: "retired" });
    expect(keyring.lookup(9)).toEqual({ kind: "unknown" });
    expect(keyring.lookup(2).kind).toBe("key");
    expect(keyring.lookup(3).kind).toBe("key");
  });

  it("derives different keys for versions 2 and 3, each deriveKey(master, salt, ENCRYPTION_KEY, versionContext(v))", () => {
    const { keyring, master } = makeKeyring();
    const key2 = keyring.keyFor(2);
    const key3 = keyring.keyFor(3);
    expect(key2.byteLength).toBe(32);
    expect(key2.equals(key3)).toBe(false);
    expect(key2.equals(deriveKey(master.bytes, salt, HkdfLabel.ENCRYPTION_KEY, versionContext(2)))).toBe(true);
    expect(key3.equals(deriveKey(master.bytes, salt, HkdfLabel.ENCRYPTION_KEY, versionContext(3)))).toBe(true);
  });

  it('derives version keys as RFC 5869 HKDF-SHA256 with info "egide/v1/ek" ‖ 0x00 ‖ uint32be(version)', () => {
    const { keyring } = makeKeyring();
    for (const version of [2, 3]) {
      const info = Buffer.concat([Buffer.from("egide/v1/ek", "ascii"), Buffer.from([0x00]), Buffer.from([0, 0, 0, version])]);
      expect(keyring.keyFor(version).toString("hex"), `version ${version}`).toBe(rfc5869(masterBytes(), salt, info, 32).toString("hex"));
    }
  });

  it("returns the same buffer for a version every time, and active() holds the active version's key", () => {
    const { keyring } = makeKeyring();
    const key3 = keyring.keyFor(3);
    expect(keyring.keyFor(3)).toBe(key3);
    expect(keyring.lookup(3)).toEqual({ kind: "key", key: key3 });
    const active = keyring.active();
    expect(active.version).toBe(3);
    expect(keyBytes(active.key).equals(key3)).toBe(true);
  });

  it("opens records under active and decrypt versions and refuses a record under the retired version", () => {
    const { keyring, master } = makeKeyring();
    const underActive = sealValue("app/k", plaintext40, keyring.active(), deterministicRandom("k3"));
    expect(valueKeyVersion(underActive)).toBe(3);
    expect(openValue("app/k", underActive, (v) => keyring.keyFor(v)).equals(plaintext40)).toBe(true);
    const underDecrypt = sealValue("app/k", plaintext40, { version: 2, key: keyring.keyFor(2) }, deterministicRandom("k2"));
    expect(openValue("app/k", underDecrypt, (v) => keyring.keyFor(v)).equals(plaintext40)).toBe(true);
    const retiredKey = deriveKey(master.bytes, salt, HkdfLabel.ENCRYPTION_KEY, versionContext(1));
    const underRetired = sealValue("app/k", plaintext40, { version: 1, key: retiredKey }, deterministicRandom("k1"));
    expect(openValue("app/k", underRetired, keysFor({ 1: retiredKey })).equals(plaintext40)).toBe(true);
    expectCorrupt(() => openValue("app/k", underRetired, (v) => keyring.keyFor(v)), /retired/);
  });

  it("zeroes every key it handed out on wipe(), then refuses lookups as SEALED", () => {
    const { keyring, master } = makeKeyring();
    const key2 = keyring.keyFor(2);
    keyring.active();
    const key3 = keyring.keyFor(3);
    expect(key2.some((byte) => byte !== 0)).toBe(true);
    expect(key3.some((byte) => byte !== 0)).toBe(true);
    expect(keyring.heldKeys()).toHaveLength(2);

    keyring.wipe();

    expect(key2.every((byte) => byte === 0)).toBe(true);
    expect(key3.every((byte) => byte === 0)).toBe(true);
    expect(keyring.heldKeys()).toEqual([]);
    for (const version of [1, 2, 3, 9]) {
      expectStorageError(() => keyring.lookup(version), StorageErrorCode.SEALED);
      expectStorageError(() => keyring.keyFor(version), StorageErrorCode.SEALED);
    }
    expectStorageError(() => keyring.active(), StorageErrorCode.SEALED);
    // The master key belongs to the seal manager, which wipes it itself.
    expect(master.wiped).toBe(false);
  });
});
