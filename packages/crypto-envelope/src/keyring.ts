import { createSecretKey } from "node:crypto";
import type { KeyObject } from "node:crypto";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { HkdfLabel, deriveKey, versionContext } from "./hkdf.js";
import type { SecretBytes } from "./secret-bytes.js";
import type { VersionedKey } from "./value-record.js";

/** The keyring format this version writes and reads. */
export const KEYRING_FORMAT = 1;

/**
 * A key version's state: `active` encrypts new values (exactly one version is active),
 * `decrypt` only reads older records, `retired` is refused (its records were all rewrapped).
 */
export type KeyVersionState = "active" | "decrypt" | "retired";

/** One encryption key version as the keyring records it. The key itself is never stored: it is derived. */
export interface KeyVersionInfo {
  version: number;
  state: KeyVersionState;
  /** When the version was added (ms since the epoch). */
  createdAt: number;
  /**
   * Encryptions reserved under this version: an upper bound of the DEKs it wrapped, because
   * processes reserve blocks before using them (see `encryptionsPerReservation`).
   */
  encryptions: number;
}

/** The keyring as stored (encrypted under the master key). */
export interface KeyringState {
  format: typeof KEYRING_FORMAT;
  /** Incremented by every change; a reload that goes backwards is refused as a rollback. */
  generation: number;
  /** The active version. */
  active: number;
  /** Every version ever added, oldest first. */
  versions: KeyVersionInfo[];
}

/** The first keyring of an installation: version 1, active. */
export function initialKeyringState(now: number): KeyringState {
  return { format: KEYRING_FORMAT, generation: 1, active: 1, versions: [{ version: 1, state: "active", createdAt: now, encryptions: 0 }] };
}

/** The stored bytes of a keyring (JSON, before encryption). */
export function serializeKeyring(state: KeyringState): Buffer {
  return Buffer.from(JSON.stringify(state), "utf8");
}

/** Parses decrypted keyring bytes; anything unexpected is `CORRUPT`. */
export function parseKeyring(bytes: Uint8Array): KeyringState {
  let parsed: KeyringState;
  try {
    parsed = JSON.parse(Buffer.from(bytes).toString("utf8")) as KeyringState;
  } catch (cause) {
    throw new StorageError(StorageErrorCode.CORRUPT, "keyring is not valid JSON", { cause });
  }
  const valid =
    typeof parsed === "object" &&
    parsed !== null &&
    parsed.format === KEYRING_FORMAT &&
    Number.isSafeInteger(parsed.generation) &&
    Array.isArray(parsed.versions) &&
    parsed.versions.every(
      (v) =>
        Number.isInteger(v.version) &&
        v.version >= 1 &&
        v.version <= 0xffffffff &&
        (v.state === "active" || v.state === "decrypt" || v.state === "retired") &&
        Number.isSafeInteger(v.encryptions) &&
        Number.isFinite(v.createdAt),
    ) &&
    parsed.versions.filter((v) => v.state === "active").length === 1 &&
    parsed.versions.find((v) => v.state === "active")?.version === parsed.active;
  if (!valid) throw new StorageError(StorageErrorCode.CORRUPT, "keyring has an unknown format or an inconsistent state");
  return parsed;
}

/** Adds version max+1 as active; the previous active version becomes `decrypt`. Returns the new version. */
export function addKeyVersion(
  state: KeyringState,
  now: number,
  version: number = Math.max(...state.versions.map((v) => v.version)) + 1,
): number {
  for (const info of state.versions) if (info.state === "active") info.state = "decrypt";
  state.versions.push({ version, state: "active", createdAt: now, encryptions: 0 });
  state.active = version;
  return version;
}

/** What {@link Keyring.lookup} found for a version. */
export type KeyLookup = { kind: "key"; key: Buffer } | { kind: "unknown" } | { kind: "retired" };

/**
 * The unsealed keyring: its state and the encryption keys derived from the master key, each
 * derived on first use and wiped with the keyring.
 */
export class Keyring {
  readonly state: KeyringState;
  readonly #masterKey: SecretBytes;
  readonly #salt: Uint8Array;
  // Each derived key twice: the Buffer is what wipe() zeroes, the KeyObject what ciphers use
  // (it saves Node importing the key on every call). Dropping the KeyObject is all seal() can
  // do for its copy, which lives in Node's memory.
  readonly #keys = new Map<number, { bytes: Buffer; object: KeyObject }>();
  readonly #byVersion = new Map<number, KeyVersionInfo>();
  #wiped = false;

  /** `masterKey` is shared with the seal manager, which wipes it; this keyring wipes only its derived keys. */
  constructor(state: KeyringState, masterKey: SecretBytes, salt: Uint8Array) {
    this.state = state;
    this.#masterKey = masterKey;
    this.#salt = salt;
    for (const info of state.versions) this.#byVersion.set(info.version, info);
  }

  /** The active version and its key (as a KeyObject), for encrypting. */
  active(): VersionedKey {
    const version = this.state.active;
    return { version, key: this.cipherKey(version) };
  }

  /** The key of `version`, or why there is none. */
  lookup(version: number): KeyLookup {
    const entry = this.#entry(version);
    return typeof entry === "string" ? { kind: entry } : { kind: "key", key: entry.bytes };
  }

  /** The key of `version`; unknown and retired versions are `CORRUPT`. */
  keyFor(version: number): Buffer {
    return this.#require(version).bytes;
  }

  /** The key of `version` as a KeyObject for cipher calls; unknown and retired versions are `CORRUPT`. */
  readonly cipherKey = (version: number): KeyObject => this.#require(version).object;

  /** Whether the keyring lists `version` (in any state). */
  knows(version: number): boolean {
    return this.#byVersion.has(version);
  }

  #require(version: number): { bytes: Buffer; object: KeyObject } {
    const entry = this.#entry(version);
    if (typeof entry !== "string") return entry;
    throw new StorageError(StorageErrorCode.CORRUPT, `record is encrypted under ${entry} key version ${version}`);
  }

  #entry(version: number): { bytes: Buffer; object: KeyObject } | "unknown" | "retired" {
    if (this.#wiped) throw new StorageError(StorageErrorCode.SEALED, "the barrier is sealed");
    const cached = this.#keys.get(version);
    if (cached) return cached;
    const info = this.#byVersion.get(version);
    if (!info) return "unknown";
    if (info.state === "retired") return "retired";
    const bytes = deriveKey(this.#masterKey.bytes, this.#salt, HkdfLabel.ENCRYPTION_KEY, versionContext(version));
    const entry = { bytes, object: createSecretKey(bytes) };
    this.#keys.set(version, entry);
    return entry;
  }

  /** The derived key buffers currently held (for wiping checks). */
  heldKeys(): Buffer[] {
    return [...this.#keys.values()].map((entry) => entry.bytes);
  }

  /** Zeroes every derived key; later lookups fail with `SEALED`. */
  wipe(): void {
    for (const entry of this.#keys.values()) entry.bytes.fill(0);
    this.#keys.clear();
    this.#wiped = true;
  }
}
