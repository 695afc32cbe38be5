import { createHash } from "node:crypto";
import type { Hash } from "node:crypto";
import { encodeRecord } from "./record-encoding.js";

/** A record count and digest as printed and compared: the digest in lowercase hex. */
export interface RecordSummary {
  records: number;
  /** SHA-256 over every record's encoding in key order, hex. */
  digest: string;
}

/**
 * The running count and SHA-256 of a sequence of records, over the same encoding the backup
 * format uses, so a backup's trailer, a restored store and both sides of a migration are
 * compared with one definition.
 */
export class RecordDigest {
  #hash: Hash = createHash("sha256");
  #count = 0;
  #bytes = 0;

  /** Adds one record's encoding. */
  addEncoded(encoded: Uint8Array): void {
    this.#hash.update(encoded);
    this.#count++;
    this.#bytes += encoded.byteLength;
  }

  /** Adds one record. */
  add(key: string, value: Uint8Array): void {
    this.addEncoded(encodeRecord(key, value));
  }

  /** Records added so far. */
  get count(): number {
    return this.#count;
  }

  /** Encoded bytes added so far. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The digest (ends this object's use). */
  digest(): Buffer {
    return this.#hash.digest();
  }

  /** Count and hex digest (ends this object's use). */
  summary(): RecordSummary {
    return { records: this.#count, digest: this.digest().toString("hex") };
  }
}
