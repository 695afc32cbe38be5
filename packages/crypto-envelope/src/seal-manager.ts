import type { AuditEntry, StorageBackend, Transaction } from "@egide/storage-core";
import { backupKeys, installationId } from "./backup-keys.js";
import { createBarrierKeyAccess, registerBarrierKeyAccess } from "./barrier-key-access.js";
import { initializeInstallation } from "./initialization.js";
import type { InitializeOptions, InitializeResult } from "./initialization.js";
import { KeyRotation } from "./key-rotation.js";
import type { KeyStatus } from "./key-rotation.js";
import { KeyringStore } from "./keyring-store.js";
import { rotateAfterRestore } from "./restore-key-jump.js";
import type { RewrapOptions, RewrapReport } from "./rewrap.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import { resolveSealSettings } from "./seal-settings.js";
import type { SealManagerOptions } from "./seal-settings.js";
import { SealState } from "./seal-state.js";
import { readUnsealKey } from "./unseal-key-source.js";
import type { UnsealKeySource } from "./unseal-key-source.js";
import { UnsealProgress } from "./unseal-progress.js";
import type { SealStatus } from "./unseal-progress.js";
import type { ShareScheme } from "./unseal-shares.js";

// The public types stay importable from here, where they were declared before the split.
export type { InitializeOptions, InitializeResult } from "./initialization.js";
export type { KeyStatus } from "./key-rotation.js";
export type { SealLogger, SealManagerOptions } from "./seal-settings.js";
export type { SealStatus } from "./unseal-progress.js";

/**
 * The key hierarchy of one installation, over the storage it is sealed in: initialisation
 * (Shamir shares of the unseal key), unseal and seal, the keyring with rotation and retirement,
 * and the keys of backups. Open it with {@link SealManager.open} on the raw (not encrypted)
 * backend, then wrap that backend with `barrier(backend, manager)`: only the barrier encrypts
 * and decrypts values, through a key access that is not part of this class's API.
 *
 * A facade: each concern lives in a module of its own (`unseal-progress`, `keyring-store`,
 * `key-rotation`, `backup-keys`, `restore-key-jump`, `initialization`, `barrier-key-access`),
 * all working on one {@link SealState}, so sealing wipes the keys for every one of them.
 */
export class SealManager {
  /** The raw storage the installation lives in. */
  readonly storage: StorageBackend;
  readonly #state: SealState;
  readonly #keyring: KeyringStore;
  readonly #unseal: UnsealProgress;
  readonly #rotation: KeyRotation;

  private constructor(storage: StorageBackend, options: SealManagerOptions) {
    this.storage = storage;
    this.#state = new SealState(storage, resolveSealSettings(options));
    this.#keyring = new KeyringStore(this.#state);
    this.#unseal = new UnsealProgress(this.#state, this.#keyring, () => this.seal());
    this.#rotation = new KeyRotation(this.#state, this.#keyring);
    registerBarrierKeyAccess(this, createBarrierKeyAccess(this.#state, this.#keyring));
  }

  /** Opens the seal manager of the installation in `storage` (initialised or not); it starts sealed. */
  static async open(storage: StorageBackend, options: SealManagerOptions = {}): Promise<SealManager> {
    const manager = new SealManager(storage, options);
    await manager.refresh();
    return manager;
  }

  /** Reads the seal configuration again (another process may have initialised the storage). */
  async refresh(): Promise<void> {
    await this.#state.refresh();
  }

  /** Whether the storage holds an initialised installation. */
  get initialized(): boolean {
    return this.#state.config !== undefined;
  }

  /** Whether the keys are unavailable (always true before initialisation). */
  get sealed(): boolean {
    return this.#state.unsealed === undefined;
  }

  /** The seal status in Vault's shape. */
  status(): SealStatus {
    return this.#unseal.status();
  }

  /**
   * Initialises the storage: a random unseal key split into `shares` shares of which
   * `threshold` unseal, a random master key stored only encrypted under the unseal key, and a
   * keyring with version 1 active, all in one transaction. Returns the shares, once; the
   * installation stays sealed unless `options.unseal`. Fails with `ALREADY_INITIALIZED` when
   * the storage holds a seal configuration, even one another process wrote a moment ago.
   *
   * With `options.within`, the caller's own first records (and audit row) are written in the
   * same transaction, encrypted under the new keys (see {@link InitializeOptions}).
   *
   * On any failure (in `within`, at commit, a lost race with another initialiser) every key
   * is wiped, the shares are zeroed, the manager stays uninitialised (or takes the other
   * initialiser's configuration) and sealed, and the error is rethrown unchanged: the
   * initialisation can be tried again. One exception: when the commit reports a failure but
   * the storage does hold this initialisation's seal configuration (a connection lost while
   * committing, after the database did commit), the initialisation did happen, and it is
   * completed as a success, so that its shares are not lost.
   */
  async initialize(scheme: ShareScheme, options: InitializeOptions = {}): Promise<InitializeResult> {
    return initializeInstallation(this.#state, () => this.seal(), scheme, options);
  }

  /**
   * Adds one share (base64, hex or raw bytes) to the current unseal attempt. A share already
   * given is ignored; a malformed one fails with `INVALID_SHARE` and keeps the progress. When
   * the threshold is reached the shares are combined: a wrong combination fails with one
   * generic `UNSEAL_FAILED` and resets the progress. Returns the status afterwards.
   */
  async unseal(share: string | Uint8Array): Promise<SealStatus> {
    return this.#unseal.add(share);
  }

  /** Discards the shares of the current unseal attempt (Vault's `reset`). */
  resetUnseal(): SealStatus {
    this.#unseal.clear();
    return this.status();
  }

  /**
   * Unseals with the unseal key itself (the share of a 1-of-1 seal), as an auto-unsealing
   * service does. Any other scheme, or a wrong key, fails.
   */
  async unsealWithKey(unsealKey: Uint8Array): Promise<SealStatus> {
    const config = await this.#state.requireConfig();
    if (config.shares !== 1) {
      throw new SealError(
        SealErrorCode.INVALID_ARGUMENT,
        `auto-unseal needs a 1-of-1 seal; this installation has ${config.threshold} of ${config.shares} shares`,
      );
    }
    return this.unseal(unsealKey);
  }

  /** Reads the unseal key from a key file or an environment variable and unseals with it. */
  async autoUnseal(source: UnsealKeySource): Promise<SealStatus> {
    const key = await readUnsealKey(source);
    try {
      return await this.unsealWithKey(key);
    } finally {
      key.fill(0);
    }
  }

  /**
   * Seals: wipes the master key, every derived key and every share received, and empties the
   * keyring cache. Every data operation through the barrier fails with `SEALED` afterwards.
   */
  seal(): void {
    this.#rotation.stopBackground();
    this.#unseal.clear();
    if (this.#state.unsealed === undefined) return;
    this.#state.discard();
    this.#state.settings.logger?.info("sealed");
  }

  /** The keyring's state. Fails with `SEALED` while sealed. */
  keyStatus(): KeyStatus {
    return this.#rotation.keyStatus();
  }

  /**
   * Adds a key version and makes it active: values written from now on are wrapped by it.
   * Older records stay readable until {@link rewrap} moves them. With `audit`, that audit row
   * is written in the keyring transaction itself (the storage must offer auditing
   * transactions), so the rotation and its audit row commit together or not at all.
   */
  async rotate(options: { audit?: AuditEntry } = {}): Promise<KeyStatus> {
    return this.#rotation.rotate(options.audit);
  }

  /**
   * Moves every record to the active key version by rewrapping DEKs only: the value
   * ciphertext stays byte-identical. Resumable: progress is stored after every batch, and a
   * later call continues where an interrupted one stopped (for the same active version).
   */
  async rewrap(options: RewrapOptions = {}): Promise<RewrapReport> {
    return this.#rotation.rewrap(options);
  }

  /**
   * Starts {@link rewrap} in the background (one at a time: a call while one runs returns the
   * running one) and returns its completion. Unless told otherwise it skips a pass that already
   * completed for the active version, so calling it after every unseal is cheap. `seal()` stops
   * it after its current batch; the next call resumes from the stored progress. Failures are
   * reported to the logger and through the returned promise, which never rejects.
   */
  rewrapInBackground(options: Omit<RewrapOptions, "signal"> = {}): Promise<RewrapReport | undefined> {
    return this.#rotation.rewrapInBackground(options);
  }

  /**
   * Retires `version`: its records become unreadable, so this is refused while any record
   * still uses it (run {@link rewrap} first), for the active version, and until the active
   * version is older than `keyringMaxAgeMs` (so no process can still be writing under it).
   */
  async retire(version: number): Promise<KeyStatus> {
    return this.#rotation.retire(version);
  }

  // ---- used by backups --------------------------------------------------------------------------

  /**
   * A 16-byte fingerprint of the master key: the same for every process and every backup of
   * one installation, different for another installation, and useless for finding the key
   * (HKDF is one-way). Fails with `SEALED` unless unsealed.
   */
  installationId(): Buffer {
    return installationId(this.#state);
  }

  /**
   * The two keys of one backup file, derived from the master key and the file's random `salt`
   * (so every file has keys of its own): AES-256-GCM for its chunks and HMAC-SHA256 for its
   * header. The caller wipes both. Fails with `SEALED` unless unsealed.
   */
  backupKeys(salt: Uint8Array): { encryptionKey: Buffer; macKey: Buffer } {
    return backupKeys(this.#state, salt);
  }

  /**
   * Inside the transaction that restored a backup of this installation into its storage: takes
   * the restored keyring (whose generation may be older than one this process has seen, since
   * a restore is a deliberate rollback), adds a key version and makes it active, and writes it
   * with a generation above every one seen. So no key version's encryption count understates
   * the encryptions made under it after the backup was taken, and processes that had seen a
   * newer keyring accept this one. This manager's own keys are stale afterwards: seal it once
   * the transaction has committed. Returns the new active version.
   *
   * `previousKeyring` is the target's keyring record from before the restore, when it had one:
   * its versions and generation count as seen too.
   */
  async rotateAfterRestore(tx: Transaction, options: { previousKeyring?: Uint8Array } = {}): Promise<number> {
    return rotateAfterRestore(this.#state, this.#keyring, tx, options);
  }
}
