import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { BoundedDekCache } from "./dek-cache.js";
import { Keyring } from "./keyring.js";
import type { KeyringState } from "./keyring.js";
import { SEAL_CONFIG_KEY } from "./reserved-keys.js";
import { parseSealConfig } from "./seal-config.js";
import type { SealConfig } from "./seal-config.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import type { SealSettings } from "./seal-settings.js";
import type { SecretBytes } from "./secret-bytes.js";

/** The keys of an unsealed installation; everything here is wiped by seal(). */
export interface UnsealedKeys {
  masterKey: SecretBytes;
  /** Encrypts the keyring and rewrap progress records. */
  systemKey: SecretBytes;
  keyring: Keyring;
  /** Unwrapped DEKs of recently read records. */
  dekCache: BoundedDekCache;
  /** Encryptions left in this process's reservation under `keyring.state.active`. */
  reserved: number;
  /** Encryptions made past the reservation (in transactions), by key version, not yet stored. */
  overdrafts: Map<number, number>;
  /** When the reservation was made (ms since the epoch). */
  reservedAt: number;
}

/**
 * What one seal manager knows about its installation: the seal configuration, the keys while
 * unsealed, and the highest keyring generation seen. Every part of the manager (unseal,
 * keyring, rotation, initialisation, the barrier's key access) works on this one object, so
 * that sealing wipes the keys for all of them at once. Never exported by the package.
 */
export class SealState {
  /** The raw storage the installation lives in. */
  readonly storage: StorageBackend;
  readonly settings: SealSettings;
  config: SealConfig | undefined;
  /** The stored bytes of `config`: the root key record binds their digest. */
  configBytes: Buffer | undefined;
  unsealed: UnsealedKeys | undefined;
  highestGeneration = 0;

  constructor(storage: StorageBackend, settings: SealSettings) {
    this.storage = storage;
    this.settings = settings;
  }

  /** Reads the seal configuration again (another process may have initialised the storage). */
  async refresh(): Promise<void> {
    const bytes = await this.storage.get(SEAL_CONFIG_KEY);
    if (bytes === null) {
      this.config = undefined;
      this.configBytes = undefined;
      return;
    }
    this.config = parseSealConfig(bytes);
    this.configBytes = bytes;
  }

  /** The seal configuration, read first if not known yet; `NOT_INITIALIZED` when there is none. */
  async requireConfig(): Promise<SealConfig> {
    if (!this.config) await this.refresh();
    if (!this.config) throw new SealError(SealErrorCode.NOT_INITIALIZED, "the storage is not initialised");
    return this.config;
  }

  /** The keys; `SEALED` while sealed. */
  requireUnsealed(): UnsealedKeys {
    if (!this.unsealed) throw new StorageError(StorageErrorCode.SEALED, "the barrier is sealed");
    return this.unsealed;
  }

  /**
   * Records `state`'s generation as seen. A keyring older than one this process has seen means
   * someone wrote an old copy back: refused as a rollback.
   */
  checkGeneration(state: KeyringState): void {
    if (state.generation < this.highestGeneration) {
      throw new StorageError(
        StorageErrorCode.CORRUPT,
        `keyring generation ${state.generation} is older than ${this.highestGeneration}, seen before: refusing a rollback`,
      );
    }
    this.highestGeneration = state.generation;
  }

  /** Wipes the keys this state holds, if any (no log line: `seal()` logs for itself). */
  discard(): void {
    const unsealed = this.unsealed;
    this.unsealed = undefined;
    if (!unsealed) return;
    unsealed.keyring.wipe();
    unsealed.dekCache.clear();
    unsealed.systemKey.wipe();
    unsealed.masterKey.wipe();
  }

  /**
   * The unsealed keys over `masterKey` and `systemKey` (which they take over: `discard` wipes
   * them) and the keyring `state`, with `reserved` encryptions already reserved at `reservedAt`.
   */
  newUnsealedKeys(
    masterKey: SecretBytes,
    systemKey: SecretBytes,
    state: KeyringState,
    salt: Uint8Array,
    reserved: number,
    reservedAt: number,
  ): UnsealedKeys {
    return {
      masterKey,
      systemKey,
      keyring: new Keyring(state, masterKey, salt),
      dekCache: new BoundedDekCache(this.settings.dekCacheEntries),
      reserved,
      overdrafts: new Map(),
      reservedAt,
    };
  }
}
