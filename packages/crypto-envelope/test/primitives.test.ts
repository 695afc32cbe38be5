/**
 * The cryptographic primitives under every record: HKDF-SHA256 (`hkdfSha256`, `hkdfInfo`,
 * `deriveKey`, `versionContext`), AES-256-GCM (`gcmSeal`, `gcmOpen`) and `constantTimeEqual`.
 *
 * Covers published known-answer vectors (RFC 5869 test cases 1 and 3; AES-256-GCM with a zero
 * key and nonce, and McGrew–Viega test case 16 with associated data), the exact HKDF info
 * encoding (label ‖ 0x00 ‖ context), and refusals: truncated or over-long tags, nonces of any
 * length but 12, wrong key / nonce / associated data and altered ciphertext or tag all fail as
 * `CORRUPT` and never return plaintext.
 */
import { createSecretKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import { StorageError } from "@egide/storage-core";
import { KEY_BYTES, NONCE_BYTES, TAG_BYTES, gcmOpen, gcmSeal } from "../src/aes-gcm.js";
import { constantTimeEqual } from "../src/constant-time.js";
import { HkdfLabel, deriveKey, hkdfInfo, hkdfSha256, versionContext } from "../src/hkdf.js";
import { expectThrownStorageError as expectStorageError, thrown } from "./support/expect-errors.js";

const hex = (text: string): Buffer => Buffer.from(text, "hex");

const expectCorrupt = (fn: () => unknown, message?: RegExp): void => expectStorageError(fn, "CORRUPT", message);

describe("hkdfSha256 (RFC 5869)", () => {
  const ikm = Buffer.alloc(22, 0x0b);

  it("matches RFC 5869 test case 1 (salt 00..0c, info f0..f9, L = 42)", () => {
    const okm = hkdfSha256(ikm, hex("000102030405060708090a0b0c"), hex("f0f1f2f3f4f5f6f7f8f9"), 42);
    expect(okm.toString("hex")).toBe("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  });

  it("matches RFC 5869 test case 3 (empty salt and info, L = 42)", () => {
    const okm = hkdfSha256(ikm, Buffer.alloc(0), Buffer.alloc(0), 42);
    expect(okm.toString("hex")).toBe("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
  });

  it("returns a 32-byte Buffer by default, the first 32 bytes of the longer output", () => {
    const salt = hex("000102030405060708090a0b0c");
    const info = hex("f0f1f2f3f4f5f6f7f8f9");
    const key = hkdfSha256(ikm, salt, info);
    expect(Buffer.isBuffer(key)).toBe(true);
    expect(key.byteLength).toBe(KEY_BYTES);
    expect(key.toString("hex")).toBe("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf");
  });

  it("returns a fresh buffer on every call, so wiping one leaves the next intact", () => {
    const first = hkdfSha256(ikm, Buffer.alloc(0), Buffer.alloc(0));
    first.fill(0);
    const second = hkdfSha256(ikm, Buffer.alloc(0), Buffer.alloc(0));
    expect(second.toString("hex")).toBe("8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d");
  });
});

describe("hkdfInfo, versionContext and deriveKey", () => {
  it("encodes the info string as label ‖ 0x00 ‖ context", () => {
    expect(hkdfInfo("egide/v1/ek", Buffer.from([0xde, 0xad, 0xbe, 0xef])).toString("hex")).toBe(
      Buffer.concat([Buffer.from("egide/v1/ek", "ascii"), Buffer.from([0x00, 0xde, 0xad, 0xbe, 0xef])]).toString("hex"),
    );
  });

  it("ends with the NUL when there is no context", () => {
    expect(hkdfInfo("egide/v1/system")).toEqual(Buffer.from("egide/v1/system\0", "ascii"));
    expect(hkdfInfo("egide/v1/system", Buffer.alloc(0))).toEqual(Buffer.from("egide/v1/system\0", "ascii"));
  });

  it("encodes the label as UTF-8", () => {
    expect(hkdfInfo("é")).toEqual(Buffer.from([0xc3, 0xa9, 0x00]));
  });

  it("keeps a label and a longer label distinct even with crafted contexts", () => {
    // "a" ‖ 0 ‖ "b…" can never equal "ab" ‖ 0 ‖ …: the NUL sits at a different offset.
    expect(hkdfInfo("a", Buffer.from("b\0", "ascii")).equals(hkdfInfo("ab"))).toBe(false);
  });

  it("encodes a key version as 4 bytes, big-endian", () => {
    expect(versionContext(1).toString("hex")).toBe("00000001");
    expect(versionContext(0x01020304).toString("hex")).toBe("01020304");
    expect(versionContext(0xffffffff).toString("hex")).toBe("ffffffff");
  });

  it("pins the label strings of the key hierarchy (changing one makes every existing key underivable)", () => {
    expect(HkdfLabel).toEqual({
      ENCRYPTION_KEY: "egide/v1/ek",
      ROOT_KEY_WRAP: "egide/v1/root-key",
      SYSTEM: "egide/v1/system",
      INSTALLATION_ID: "egide/v1/installation-id",
      BACKUP: "egide/v1/backup",
    });
  });

  it("derives a key as HKDF-SHA256 over label ‖ 0x00 ‖ context", () => {
    const ikm = Buffer.alloc(32, 0x42);
    const salt = Buffer.alloc(32, 0x17);
    const key = deriveKey(ikm, salt, HkdfLabel.ENCRYPTION_KEY, versionContext(3));
    const expected = hkdfSha256(ikm, salt, Buffer.concat([Buffer.from("egide/v1/ek\0", "ascii"), Buffer.from([0, 0, 0, 3])]), 32);
    expect(key.byteLength).toBe(KEY_BYTES);
    expect(key.equals(expected)).toBe(true);
  });

  it("derives different keys for different labels, versions and salts", () => {
    const ikm = Buffer.alloc(32, 0x42);
    const salt = Buffer.alloc(32, 0x17);
    const keys = [
      deriveKey(ikm, salt, HkdfLabel.ENCRYPTION_KEY, versionContext(1)),
      deriveKey(ikm, salt, HkdfLabel.ENCRYPTION_KEY, versionContext(2)),
      deriveKey(ikm, salt, HkdfLabel.ROOT_KEY_WRAP),
      deriveKey(ikm, salt, HkdfLabel.SYSTEM),
      deriveKey(ikm, Buffer.alloc(32, 0x18), HkdfLabel.SYSTEM),
      deriveKey(Buffer.alloc(32, 0x43), salt, HkdfLabel.SYSTEM),
    ];
    expect(new Set(keys.map((key) => key.toString("hex"))).size).toBe(keys.length);
  });
});

describe("gcmSeal / gcmOpen known answers (AES-256-GCM)", () => {
  const zeroKey = Buffer.alloc(32);
  const zeroNonce = Buffer.alloc(12);

  it("uses 32-byte keys, 12-byte nonces and 16-byte tags", () => {
    expect([KEY_BYTES, NONCE_BYTES, TAG_BYTES]).toEqual([32, 12, 16]);
  });

  it("seals an empty plaintext with empty AAD under the zero key and nonce to tag 530f8afb…", () => {
    const sealed = gcmSeal(zeroKey, zeroNonce, Buffer.alloc(0), Buffer.alloc(0));
    expect(sealed.ciphertext.byteLength).toBe(0);
    expect(sealed.tag.toString("hex")).toBe("530f8afbc74536b9a963b4f1c4cb738b");
  });

  it("seals one zero block under the zero key and nonce to cea7403d… with tag d0d1c8a7…", () => {
    const sealed = gcmSeal(zeroKey, zeroNonce, Buffer.alloc(16), Buffer.alloc(0));
    expect(sealed.ciphertext.toString("hex")).toBe("cea7403d4d606b6e074ec5d3baf39d18");
    expect(sealed.tag.toString("hex")).toBe("d0d1c8a799996bf0265b98b5d48ab919");
  });

  it("opens the empty-plaintext vector to an empty plaintext", () => {
    const plaintext = gcmOpen(zeroKey, zeroNonce, Buffer.alloc(0), hex("530f8afbc74536b9a963b4f1c4cb738b"), Buffer.alloc(0));
    expect(plaintext.byteLength).toBe(0);
  });

  it("opens the one-block vector to the zero block", () => {
    const plaintext = gcmOpen(
      zeroKey,
      zeroNonce,
      hex("cea7403d4d606b6e074ec5d3baf39d18"),
      hex("d0d1c8a799996bf0265b98b5d48ab919"),
      Buffer.alloc(0),
    );
    expect(plaintext.toString("hex")).toBe("00000000000000000000000000000000");
  });

  // McGrew & Viega, "The Galois/Counter Mode of Operation", test case 16 (AES-256, 60-byte
  // plaintext, 20-byte associated data).
  const tc16 = {
    key: hex("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"),
    nonce: hex("cafebabefacedbaddecaf888"),
    aad: hex("feedfacedeadbeeffeedfacedeadbeefabaddad2"),
    plaintext: hex(
      "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39",
    ),
    ciphertext: hex(
      "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662",
    ),
    tag: hex("76fc6ece0f4e1768cddf8853bb2d551b"),
  };

  it("matches GCM test case 16 (AES-256 with associated data) in both directions", () => {
    const sealed = gcmSeal(tc16.key, tc16.nonce, tc16.plaintext, tc16.aad);
    expect(sealed.ciphertext.toString("hex")).toBe(tc16.ciphertext.toString("hex"));
    expect(sealed.tag.toString("hex")).toBe(tc16.tag.toString("hex"));
    expect(gcmOpen(tc16.key, tc16.nonce, tc16.ciphertext, tc16.tag, tc16.aad).equals(tc16.plaintext)).toBe(true);
  });

  it("accepts plain Uint8Arrays as well as Buffers", () => {
    const sealed = gcmSeal(new Uint8Array(tc16.key), new Uint8Array(tc16.nonce), new Uint8Array(tc16.plaintext), new Uint8Array(tc16.aad));
    expect(sealed.tag.equals(tc16.tag)).toBe(true);
    const opened = gcmOpen(
      new Uint8Array(tc16.key),
      new Uint8Array(tc16.nonce),
      new Uint8Array(sealed.ciphertext),
      new Uint8Array(sealed.tag),
      new Uint8Array(tc16.aad),
    );
    expect(opened.equals(tc16.plaintext)).toBe(true);
  });
});

describe("gcmSeal / gcmOpen with KeyObject keys", () => {
  it("gives the same known answers with the key as a KeyObject", () => {
    const key = createSecretKey(Buffer.alloc(32));
    const sealed = gcmSeal(key, Buffer.alloc(12), Buffer.alloc(16), Buffer.alloc(0));
    expect(sealed.ciphertext.toString("hex")).toBe("cea7403d4d606b6e074ec5d3baf39d18");
    expect(sealed.tag.toString("hex")).toBe("d0d1c8a799996bf0265b98b5d48ab919");
    expect(gcmOpen(key, Buffer.alloc(12), sealed.ciphertext, sealed.tag, Buffer.alloc(0)).equals(Buffer.alloc(16))).toBe(true);
  });

  it("refuses a wrong 32-byte KeyObject as CORRUPT", () => {
    const sealed = gcmSeal(createSecretKey(Buffer.alloc(32, 1)), Buffer.alloc(12), Buffer.from("x"), Buffer.alloc(0));
    expectCorrupt(() => gcmOpen(createSecretKey(Buffer.alloc(32, 2)), Buffer.alloc(12), sealed.ciphertext, sealed.tag, Buffer.alloc(0)));
  });

  it("refuses a 16-byte KeyObject rather than falling back to AES-128", () => {
    // Only byte keys are measured by the package (KeyObjects are its own, made from checked
    // buffers); Node itself still rejects a 16-byte key for aes-256-gcm.
    const sealed = gcmSeal(createSecretKey(Buffer.alloc(32, 1)), Buffer.alloc(12), Buffer.from("x"), Buffer.alloc(0));
    thrown(() => gcmSeal(createSecretKey(Buffer.alloc(16)), Buffer.alloc(12), Buffer.from("x"), Buffer.alloc(0)));
    thrown(() => gcmOpen(createSecretKey(Buffer.alloc(16, 1)), Buffer.alloc(12), sealed.ciphertext, sealed.tag, Buffer.alloc(0)));
  });
});

describe("gcmOpen refusals", () => {
  const key = Buffer.alloc(32, 0x11);
  const nonce = Buffer.alloc(12, 0x22);
  const aad = Buffer.from("header and storage key", "utf8");
  const plaintext = Buffer.from("the quick brown fox jumps over the lazy dog", "utf8");
  const sealed = gcmSeal(key, nonce, plaintext, aad);

  it("opens the untouched ciphertext (baseline for the refusals below)", () => {
    expect(gcmOpen(key, nonce, sealed.ciphertext, sealed.tag, aad).equals(plaintext)).toBe(true);
  });

  it.each([4, 8, 12, 15])("refuses the genuine tag truncated to %i bytes as CORRUPT", (length) => {
    expectCorrupt(() => gcmOpen(key, nonce, sealed.ciphertext, sealed.tag.subarray(0, length), aad), /tag must be 16 bytes/);
  });

  it.each([4, 8, 12, 15])("refuses a %i-byte truncated tag of an empty plaintext as CORRUPT", (length) => {
    const empty = gcmSeal(key, nonce, Buffer.alloc(0), aad);
    expectCorrupt(() => gcmOpen(key, nonce, Buffer.alloc(0), empty.tag.subarray(0, length), aad));
  });

  it.each([0, 17, 32])("refuses a %i-byte tag as CORRUPT", (length) => {
    const tag = Buffer.concat([sealed.tag, Buffer.alloc(Math.max(0, length - TAG_BYTES))]).subarray(0, length);
    expectCorrupt(() => gcmOpen(key, nonce, sealed.ciphertext, tag, aad), /tag must be 16 bytes/);
  });

  it.each([0, 8, 11, 13, 16])("refuses a %i-byte nonce as CORRUPT", (length) => {
    const wrongNonce = Buffer.concat([nonce, Buffer.alloc(16)]).subarray(0, length);
    expectCorrupt(() => gcmOpen(key, wrongNonce, sealed.ciphertext, sealed.tag, aad), /nonce must be 12 bytes/);
  });

  it.each([0, 8, 11, 13, 16])("refuses to seal with a %i-byte nonce", (length) => {
    const error = thrown(() => gcmSeal(key, Buffer.alloc(length), plaintext, aad));
    expect(StorageError.isInstance(error)).toBe(true);
  });

  it("refuses the wrong key as CORRUPT", () => {
    expectCorrupt(() => gcmOpen(Buffer.alloc(32, 0x12), nonce, sealed.ciphertext, sealed.tag, aad), /authentication failed/);
  });

  it("refuses a key that differs in its last bit only as CORRUPT", () => {
    const other = Buffer.from(key);
    other[31] = (other[31] ?? 0) ^ 0x01;
    expectCorrupt(() => gcmOpen(other, nonce, sealed.ciphertext, sealed.tag, aad));
  });

  it("refuses the wrong associated data as CORRUPT", () => {
    expectCorrupt(
      () => gcmOpen(key, nonce, sealed.ciphertext, sealed.tag, Buffer.from("header and storage kez", "utf8")),
      /authentication failed/,
    );
  });

  it("refuses missing or extra associated data as CORRUPT", () => {
    expectCorrupt(() => gcmOpen(key, nonce, sealed.ciphertext, sealed.tag, Buffer.alloc(0)));
    expectCorrupt(() => gcmOpen(key, nonce, sealed.ciphertext, sealed.tag, Buffer.concat([aad, Buffer.from([0])])));
  });

  it("refuses another nonce of the right length as CORRUPT", () => {
    expectCorrupt(() => gcmOpen(key, Buffer.alloc(12, 0x23), sealed.ciphertext, sealed.tag, aad));
  });

  it("refuses every single-bit change of the ciphertext or tag as CORRUPT", () => {
    const accepted: string[] = [];
    for (const part of ["ciphertext", "tag"] as const) {
      const original = sealed[part];
      for (let bit = 0; bit < original.byteLength * 8; bit++) {
        const altered = Buffer.from(original);
        altered[bit >> 3] = (altered[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        const ciphertext = part === "ciphertext" ? altered : sealed.ciphertext;
        const tag = part === "tag" ? altered : sealed.tag;
        try {
          gcmOpen(key, nonce, ciphertext, tag, aad);
          accepted.push(`${part} bit ${bit}: opened`);
        } catch (error) {
          if (!StorageError.isInstance(error, "CORRUPT")) accepted.push(`${part} bit ${bit}: ${String(error)}`);
        }
      }
    }
    expect(accepted).toEqual([]);
  });

  it("refuses a truncated or extended ciphertext as CORRUPT", () => {
    expectCorrupt(() => gcmOpen(key, nonce, sealed.ciphertext.subarray(0, sealed.ciphertext.byteLength - 1), sealed.tag, aad));
    expectCorrupt(() => gcmOpen(key, nonce, Buffer.concat([sealed.ciphertext, Buffer.from([0])]), sealed.tag, aad));
    expectCorrupt(() => gcmOpen(key, nonce, Buffer.alloc(0), sealed.tag, aad));
  });

  it.each([0, 16, 31, 33, 64])("refuses a %i-byte key as INTERNAL (a programming error, not a bad record)", (length) => {
    expectStorageError(() => gcmOpen(Buffer.alloc(length), nonce, sealed.ciphertext, sealed.tag, aad), "INTERNAL", /32 bytes/);
    expectStorageError(() => gcmSeal(Buffer.alloc(length), nonce, plaintext, aad), "INTERNAL", /32 bytes/);
  });
});

describe("constantTimeEqual", () => {
  it("is true for identical bytes", () => {
    expect(constantTimeEqual(Buffer.from([1, 2, 3]), Buffer.from([1, 2, 3]))).toBe(true);
  });

  it("is true for two empty inputs", () => {
    expect(constantTimeEqual(Buffer.alloc(0), new Uint8Array(0))).toBe(true);
  });

  it("compares contents, not identity or type (Buffer against Uint8Array)", () => {
    const bytes = Buffer.alloc(32, 0xab);
    expect(constantTimeEqual(bytes, new Uint8Array(bytes))).toBe(true);
  });

  it("is false when the first, a middle or the last byte differs", () => {
    const base = Buffer.alloc(32, 0x5a);
    for (const index of [0, 15, 31]) {
      const other = Buffer.from(base);
      other[index] = (other[index] ?? 0) ^ 0x80;
      expect(constantTimeEqual(base, other), `byte ${index}`).toBe(false);
    }
  });

  it("is false, without throwing, for different lengths (including a prefix)", () => {
    expect(constantTimeEqual(Buffer.from([1, 2, 3]), Buffer.from([1, 2]))).toBe(false);
    expect(constantTimeEqual(Buffer.alloc(0), Buffer.from([0]))).toBe(false);
    expect(constantTimeEqual(Buffer.alloc(16), Buffer.alloc(32))).toBe(false);
  });
});
