import { randomInt, randomUUID } from "node:crypto";
import { StorageError, StorageErrorCode, isAuditingTransaction } from "@egide/storage-core";
import type { AuditEntry, AuditingTransaction, StorageBackend, Transaction } from "@egide/storage-core";
import { KEY_BYTES } from "./aes-gcm.js";
import { barrierTransaction } from "./barrier.js";
import { constantTimeEqual } from "./constant-time.js";
import { BoundedDekCache } from "./dek-cache.js";
import { HkdfLabel, deriveKey, hkdfInfo, hkdfSha256 } from "./hkdf.js";
import { Keyring, addKeyVersion, initialKeyringState, parseKeyring, serializeKeyring } from "./keyring.js";
import type { KeyVersionInfo, KeyVersionState, KeyringState } from "./keyring.js";
import { randomBytesFrom, systemRandom } from "./random-source.js";
import type { RandomSource } from "./random-source.js";
import { HEADER_BYTES, RecordType, headerKeyVersion } from "./record-format.js";
import { KEYRING_KEY, REWRAP_PROGRESS_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY, isReservedKey } from "./reserved-keys.js";
import { runRewrap } from "./rewrap.js";
import type { RewrapOptions, RewrapReport } from "./rewrap.js";
import { SEAL_CONFIG_FORMAT, parseSealConfig, sealConfigDigest, serializeSealConfig } from "./seal-config.js";
import type { SealConfig } from "./seal-config.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import { SecretBytes } from "./secret-bytes.js";
import { openSystemRecord, sealSystemRecord } from "./sealed-record.js";
import { readUnsealKey } from "./unseal-key-source.js";
import type { UnsealKeySource } from "./unseal-key-source.js";
import { checkShareScheme, combineShares, decodeShare, shareLength, splitUnsealKey } from "./unseal-shares.js";
import type { ShareScheme } from "./unseal-shares.js";
import { openValue, sealValue, valueKeyVersion } from "./value-record.js";

/**
 * Where the seal manager reports what it does. Messages and fields never hold a share, a key
 * or a value; pino and console both fit.
 */
export interface SealLogger {
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
}

/** Options of {@link SealManager.open}. */
export interface SealManagerOptions {
  /** Where keys, DEKs and nonces come from. Default: the system CSPRNG. */
  random?: RandomSource;
  /** Where events are reported. Default: nowhere. */
  logger?: SealLogger;
  /**
   * Encryptions under one key version after which a new version is added automatically, well
   * below the 2^32 random-nonce limit of AES-GCM. Default 2^30.
   */
  rotateAfterEncryptions?: number;
  /**
   * How many encryptions a process reserves in the stored keyring at a time. Counts are
   * reserved before use, so the stored count does not fall behind the real one, across
   * processes and crashes; unused reservations only make it overestimate. The one exception:
   * a transaction that writes more values than are left overdraws, and the overdraft is
   * recorded by the next reservation (lost only if the process dies in between). Default 10,000.
   */
  encryptionsPerReservation?: number;
  /**
   * The longest a process keeps encrypting under the version it last reserved before reading
   * the keyring again, which bounds how long a rotation made by another process goes unseen.
   * Default 30 s.
   */
  keyringMaxAgeMs?: number;
  /**
   * How many unwrapped DEKs to keep, so reading a value again costs one AES-GCM call instead
   * of two; 0 disables. Emptied on seal and on every keyring change. Default 10,000 (a few MB).
   */
  dekCacheEntries?: number;
  /**
   * A manager that never writes its storage: unsealing makes no encryption reservation, and
   * encrypting is refused with `READ_ONLY`. For offline tools that only read (a backup of a
   * stopped installation, the keys of a backup file's own records).
   */
  readOnly?: boolean;
}

/** Vault's seal status, as `GET /v1/sys/seal-status` reports it. */
export interface SealStatus {
  type: "shamir";
  initialized: boolean;
  sealed: boolean;
  /** Threshold: shares needed (0 when not initialised). */
  t: number;
  /** Shares produced at init (0 when not initialised). */
  n: number;
  /** Distinct shares received towards the current unseal attempt. */
  progress: number;
  /** Identifies the current unseal attempt; empty when none is in progress. */
  nonce: string;
}

/** What {@link SealManager.initialize} returns: the only time the shares exist outside their holders. */
export interface InitializeResult {
  /**
   * The unseal key shares (raw bytes; Vault prints them as `keys` in hex and `keys_base64`).
   * The caller hands them out and then wipes these buffers.
   */
  shares: Buffer[];
}

/** Options of {@link SealManager.initialize}. */
export interface InitializeOptions {
  /**
   * Runs inside the initialising transaction, before it commits, with an encrypting (barrier)
   * view of it keyed by the new installation's keys: what it writes (a root token, default
   * mounts, the request's audit row through `appendAudit`) commits with the seal configuration
   * or not at all. Until the commit the keys are visible to nothing else: the manager stays
   * uninitialised and sealed. It may run more than once (the storage retries a transaction
   * after a serialization conflict); only the last run's writes commit. Throwing aborts the
   * initialisation: nothing is stored, and the error reaches the caller unchanged.
   */
  within?: (tx: AuditingTransaction) => Promise<void>;
  /**
   * Stay unsealed after a successful commit (auto-unseal, dev mode), with the keys the
   * initialisation made: no share goes through {@link SealManager.unseal} or its progress, and
   * the storage is not read again. Default false: the installation starts sealed.
   */
  unseal?: boolean;
}

/** The keyring as `GET /v1/sys/key-status` reports it. */
export interface KeyStatus {
  /** The active version (Vault's `term`). */
  term: number;
  /** When the active version was added (ISO 8601). */
  installTime: string;
  /** Encryptions reserved under the active version (an upper bound of those done). */
  encryptions: number;
  /** The encryption count that triggers an automatic rotation. */
  rotateAfterEncryptions: number;
  versions: Array<{ version: number; state: KeyVersionState; createdAt: string; encryptions: number }>;
}

const DEFAULT_ROTATE_AFTER = 2 ** 30;
const UNSEAL_FAILED_MESSAGE = "unseal failed: the shares do not open this installation";
const DEFAULT_RESERVATION = 10_000;
const DEFAULT_KEYRING_MAX_AGE_MS = 30_000;
const DEFAULT_DEK_CACHE_ENTRIES = 10_000;
// The hard ceiling for rotateAfterEncryptions: 2^32 random 96-bit nonces under one key is
// where NIST SP 800-38D stops; the configured limit must leave room below it.
const GCM_RANDOM_NONCE_LIMIT = 2 ** 32;

/** The keys of an unsealed installation; everything here is wiped by seal(). */
/** The new key version after a restore lies this far (at most) past every known one. */
const RESTORE_VERSION_GAP = 1 << 20;
/** Key versions are stored as uint32. */
const MAX_KEY_VERSION = 0xffffffff;

/** The length of {@link SealManager.installationId}. */
const INSTALLATION_ID_BYTES = 16;

interface Unsealed {
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
 * The key hierarchy of one installation, over the storage it is sealed in: initialisation
 * (Shamir shares of the unseal key), unseal and seal, the keyring with rotation and retirement,
 * and the record encryption the barrier uses. Open it with {@link SealManager.open} on the raw
 * (not encrypted) backend, then wrap that backend with `barrier(backend, manager)`.
 */
export class SealManager {
  /** The raw storage the installation lives in. */
  readonly storage: StorageBackend;
  readonly #random: RandomSource;
  readonly #logger: SealLogger | undefined;
  readonly #rotateAfter: number;
  readonly #reservation: number;
  readonly #keyringMaxAgeMs: number;
  readonly #dekCacheEntries: number;
  readonly #readOnly: boolean;
  /** What this manager was opened with, for the pending manager of an initialisation. */
  readonly #options: SealManagerOptions;

  #config: SealConfig | undefined;
  #configBytes: Buffer | undefined;
  #unsealed: Unsealed | undefined;
  #progress: Buffer[] = [];
  #nonce = "";
  #attempt: Promise<unknown> = Promise.resolve();
  #reserving: Promise<void> | undefined;
  #reloading: Promise<void> | undefined;
  #highestGeneration = 0;
  #background: { controller: AbortController; done: Promise<RewrapReport | undefined> } | undefined;

  private constructor(storage: StorageBackend, options: SealManagerOptions) {
    this.storage = storage;
    this.#options = options;
    this.#random = options.random ?? systemRandom;
    this.#logger = options.logger;
    this.#rotateAfter = positiveInteger(options.rotateAfterEncryptions ?? DEFAULT_ROTATE_AFTER, "rotateAfterEncryptions");
    if (this.#rotateAfter > GCM_RANDOM_NONCE_LIMIT / 2) {
      throw new SealError(SealErrorCode.INVALID_ARGUMENT, `rotateAfterEncryptions must be at most 2^31, well below AES-GCM's 2^32 limit`);
    }
    this.#reservation = Math.min(positiveInteger(options.encryptionsPerReservation ?? DEFAULT_RESERVATION, "encryptionsPerReservation"), this.#rotateAfter);
    this.#keyringMaxAgeMs = positiveInteger(options.keyringMaxAgeMs ?? DEFAULT_KEYRING_MAX_AGE_MS, "keyringMaxAgeMs");
    const cacheEntries = options.dekCacheEntries ?? DEFAULT_DEK_CACHE_ENTRIES;
    this.#dekCacheEntries = cacheEntries === 0 ? 0 : positiveInteger(cacheEntries, "dekCacheEntries");
    this.#readOnly = options.readOnly === true;
  }

  /** Opens the seal manager of the installation in `storage` (initialised or not); it starts sealed. */
  static async open(storage: StorageBackend, options: SealManagerOptions = {}): Promise<SealManager> {
    const manager = new SealManager(storage, options);
    await manager.refresh();
    return manager;
  }

  /** Reads the seal configuration again (another process may have initialised the storage). */
  async refresh(): Promise<void> {
    const bytes = await this.storage.get(SEAL_CONFIG_KEY);
    if (bytes === null) {
      this.#config = undefined;
      this.#configBytes = undefined;
      return;
    }
    this.#config = parseSealConfig(bytes);
    this.#configBytes = bytes;
  }

  /** Whether the storage holds an initialised installation. */
  get initialized(): boolean {
    return this.#config !== undefined;
  }

  /** Whether the keys are unavailable (always true before initialisation). */
  get sealed(): boolean {
    return this.#unsealed === undefined;
  }

  /** The seal status in Vault's shape. */
  status(): SealStatus {
    return {
      type: "shamir",
      initialized: this.#config !== undefined,
      sealed: this.#unsealed === undefined,
      t: this.#config?.threshold ?? 0,
      n: this.#config?.shares ?? 0,
      progress: this.#progress.length,
      nonce: this.#nonce,
    };
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
    checkShareScheme(scheme);
    const within = options.within;
    const stayUnsealed = options.unseal === true;
    // The pending keys serve `within` and, with `unseal`, become this manager's after the commit.
    const needsPending = within !== undefined || stayUnsealed;
    // The pending state holds one reservation from the start, counted in the first keyring.
    const reservation = needsPending && !this.#readOnly ? this.#reservation : 0;
    const now = Date.now();
    const config: SealConfig = {
      format: SEAL_CONFIG_FORMAT,
      type: "shamir",
      shares: scheme.shares,
      threshold: scheme.threshold,
      salt: randomBytesFrom(this.#random, KEY_BYTES),
      createdAt: new Date(now).toISOString(),
    };
    const configBytes = serializeSealConfig(config);
    const unsealKey = randomBytesFrom(this.#random, KEY_BYTES);
    const masterKey = randomBytesFrom(this.#random, KEY_BYTES);
    const rootWrapKey = deriveKey(unsealKey, config.salt, HkdfLabel.ROOT_KEY_WRAP);
    const systemKey = deriveKey(masterKey, config.salt, HkdfLabel.SYSTEM);
    let pending: SealManager | undefined;
    try {
      const rootRecord = sealSystemRecord(RecordType.ROOT_KEY, ROOT_KEY_KEY, masterKey, rootWrapKey, this.#random, sealConfigDigest(configBytes));
      const keyringState = initialKeyringState(now);
      const firstVersion = keyringState.versions[0] as KeyVersionInfo;
      firstVersion.encryptions = reservation;
      const sealKeyring = () => sealSystemRecord(RecordType.KEYRING, KEYRING_KEY, serializeKeyring(keyringState), systemKey, this.#random);
      const keyringRecord = sealKeyring();
      const shares = await splitUnsealKey(unsealKey, scheme);
      if (needsPending) pending = this.#pendingInstallation(config, configBytes, masterKey, systemKey, keyringState, reservation, now);
      const pendingUnsealed = pending === undefined ? undefined : pending.#unsealed;
      try {
        await this.storage.transaction(async (tx) => {
          if (await tx.exists(SEAL_CONFIG_KEY)) {
            throw new SealError(SealErrorCode.ALREADY_INITIALIZED, "the storage is already initialised");
          }
          await tx.put(SEAL_CONFIG_KEY, configBytes);
          await tx.put(ROOT_KEY_KEY, rootRecord);
          await tx.put(KEYRING_KEY, keyringRecord);
          if (!within || !pending || !pendingUnsealed) return;
          // A retried transaction starts again from the first keyring and a full reservation.
          firstVersion.encryptions = reservation;
          pendingUnsealed.reserved = reservation;
          pendingUnsealed.overdrafts.clear();
          pendingUnsealed.dekCache.clear();
          const view = barrierTransaction(tx, pending, this.storage.type);
          try {
            await within(view);
          } finally {
            view.close();
          }
          // Writes past the reservation are counted in the keyring that commits with them.
          const overdraft = pendingUnsealed.overdrafts.get(firstVersion.version) ?? 0;
          if (overdraft > 0) {
            pendingUnsealed.overdrafts.clear();
            firstVersion.encryptions = reservation + overdraft;
            await tx.put(KEYRING_KEY, sealKeyring());
          }
        });
      } catch (error) {
        if (!(await this.#settleFailedInitialization(configBytes))) {
          if (pending) pending.#discard();
          for (const share of shares) share.fill(0);
          throw error;
        }
        this.#logger?.warn("initialization committed although the commit reported a failure", {
          error: (error as Error)?.message ?? String(error),
        });
      }
      // Committed: a new installation, whose keyring generations start again. Keys this
      // manager still holds belong to an earlier installation (its storage was emptied under
      // a running process): nobody can hold the new shares yet, so they are never this one's.
      if (this.#unsealed) this.seal();
      this.#config = config;
      this.#configBytes = configBytes;
      this.#highestGeneration = 0;
      this.#logger?.info("initialized", { shares: scheme.shares, threshold: scheme.threshold });
      if (stayUnsealed && pending) this.#adoptPending(pending);
      else if (pending) pending.#discard();
      return { shares };
    } catch (error) {
      if (pending) pending.#discard();
      throw error;
    } finally {
      unsealKey.fill(0);
      masterKey.fill(0);
      rootWrapKey.fill(0);
      systemKey.fill(0);
    }
  }

  /**
   * Adds one share (base64, hex or raw bytes) to the current unseal attempt. A share already
   * given is ignored; a malformed one fails with `INVALID_SHARE` and keeps the progress. When
   * the threshold is reached the shares are combined: a wrong combination fails with one
   * generic `UNSEAL_FAILED` and resets the progress. Returns the status afterwards.
   */
  async unseal(share: string | Uint8Array): Promise<SealStatus> {
    // One share at a time: a combination in progress must finish before the next share counts.
    const run = this.#attempt.then(() => this.#addShare(share));
    this.#attempt = run.catch(() => undefined);
    return run;
  }

  /** Discards the shares of the current unseal attempt (Vault's `reset`). */
  resetUnseal(): SealStatus {
    this.#clearProgress();
    return this.status();
  }

  /**
   * Unseals with the unseal key itself (the share of a 1-of-1 seal), as an auto-unsealing
   * service does. Any other scheme, or a wrong key, fails.
   */
  async unsealWithKey(unsealKey: Uint8Array): Promise<SealStatus> {
    const config = await this.#requireConfig();
    if (config.shares !== 1) {
      throw new SealError(SealErrorCode.INVALID_ARGUMENT, `auto-unseal needs a 1-of-1 seal; this installation has ${config.threshold} of ${config.shares} shares`);
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
    this.#background?.controller.abort();
    this.#clearProgress();
    if (this.#unsealed === undefined) return;
    this.#discard();
    this.#logger?.info("sealed");
  }

  /** The keyring's state. Fails with `SEALED` while sealed. */
  keyStatus(): KeyStatus {
    const state = this.#requireUnsealed().keyring.state;
    const active = state.versions.find((v) => v.version === state.active) as KeyVersionInfo;
    return {
      term: state.active,
      installTime: new Date(active.createdAt).toISOString(),
      encryptions: active.encryptions,
      rotateAfterEncryptions: this.#rotateAfter,
      versions: state.versions.map((v) => ({ version: v.version, state: v.state, createdAt: new Date(v.createdAt).toISOString(), encryptions: v.encryptions })),
    };
  }

  /**
   * Adds a key version and makes it active: values written from now on are wrapped by it.
   * Older records stay readable until {@link rewrap} moves them. With `audit`, that audit row
   * is written in the keyring transaction itself (the storage must offer auditing
   * transactions), so the rotation and its audit row commit together or not at all.
   */
  async rotate(options: { audit?: AuditEntry } = {}): Promise<KeyStatus> {
    await this.#reserve("manual", options.audit);
    return this.keyStatus();
  }

  /**
   * Moves every record to the active key version by rewrapping DEKs only: the value
   * ciphertext stays byte-identical. Resumable: progress is stored after every batch, and a
   * later call continues where an interrupted one stopped (for the same active version).
   */
  async rewrap(options: RewrapOptions = {}): Promise<RewrapReport> {
    this.#requireUnsealed();
    return runRewrap(
      {
        storage: this.storage,
        random: this.#random,
        logger: this.#logger,
        activeKey: () => this.#requireUnsealed().keyring.active(),
        keyFor: (version) => this.#requireUnsealed().keyring.keyFor(version),
        loadProgress: () => this.#readSystemRecord(REWRAP_PROGRESS_KEY, RecordType.REWRAP_PROGRESS),
        saveProgress: (bytes) => this.storage.put(REWRAP_PROGRESS_KEY, this.#sealSystem(RecordType.REWRAP_PROGRESS, REWRAP_PROGRESS_KEY, bytes)),
      },
      options,
    );
  }

  /**
   * Starts {@link rewrap} in the background (one at a time: a call while one runs returns the
   * running one) and returns its completion. Unless told otherwise it skips a pass that already
   * completed for the active version, so calling it after every unseal is cheap. `seal()` stops it after its current batch; the
   * next call resumes from the stored progress. Failures are reported to the logger and through
   * the returned promise, which never rejects.
   */
  rewrapInBackground(options: Omit<RewrapOptions, "signal"> = {}): Promise<RewrapReport | undefined> {
    if (this.#background) return this.#background.done;
    const controller = new AbortController();
    const done = this.rewrap({ skipIfDone: true, ...options, signal: controller.signal }).then(
      (report) => report,
      (error: unknown) => {
        this.#logger?.warn("background rewrap stopped", { error: (error as Error)?.message ?? String(error) });
        return undefined;
      },
    );
    const background = { controller, done };
    this.#background = background;
    void done.finally(() => {
      if (this.#background === background) this.#background = undefined;
    });
    return done;
  }

  /**
   * Retires `version`: its records become unreadable, so this is refused while any record
   * still uses it (run {@link rewrap} first), for the active version, and until the active
   * version is older than `keyringMaxAgeMs` (so no process can still be writing under it).
   */
  async retire(version: number): Promise<KeyStatus> {
    const unsealed = this.#requireUnsealed();
    const state = unsealed.keyring.state;
    const info = state.versions.find((v) => v.version === version);
    if (!info) throw new SealError(SealErrorCode.INVALID_ARGUMENT, `key version ${version} does not exist`);
    if (info.state === "retired") return this.keyStatus();
    if (info.state === "active") throw new SealError(SealErrorCode.KEY_VERSION_IN_USE, `key version ${version} is active; rotate first`);
    const active = state.versions.find((v) => v.version === state.active) as KeyVersionInfo;
    const waitMs = active.createdAt + this.#keyringMaxAgeMs - Date.now();
    if (waitMs > 0) {
      throw new SealError(SealErrorCode.KEY_VERSION_IN_USE, `key version ${version} may still be in use by other processes for ${Math.ceil(waitMs / 1000)} s`);
    }
    let remaining = 0;
    for await (const entry of this.storage.scan("")) {
      if (isReservedKey(entry.key)) continue;
      if (valueKeyVersion(entry.value) === version) remaining++;
    }
    if (remaining > 0) {
      throw new SealError(SealErrorCode.KEY_VERSION_IN_USE, `${remaining} records still use key version ${version}; run rewrap first`);
    }
    await this.#updateKeyring((draft) => {
      const target = draft.versions.find((v) => v.version === version);
      if (target && target.state === "decrypt") target.state = "retired";
    });
    this.#logger?.info("key version retired", { version });
    return this.keyStatus();
  }

  // ---- used by backups --------------------------------------------------------------------------

  /**
   * A 16-byte fingerprint of the master key: the same for every process and every backup of
   * one installation, different for another installation, and useless for finding the key
   * (HKDF is one-way). Fails with `SEALED` unless unsealed.
   */
  installationId(): Buffer {
    const { masterKey } = this.#requireUnsealed();
    const config = this.#config;
    if (!config) throw new SealError(SealErrorCode.NOT_INITIALIZED, "the storage holds no installation");
    return hkdfSha256(masterKey.bytes, config.salt, hkdfInfo(HkdfLabel.INSTALLATION_ID), INSTALLATION_ID_BYTES);
  }

  /**
   * The two keys of one backup file, derived from the master key and the file's random `salt`
   * (so every file has keys of its own): AES-256-GCM for its chunks and HMAC-SHA256 for its
   * header. The caller wipes both. Fails with `SEALED` unless unsealed.
   */
  backupKeys(salt: Uint8Array): { encryptionKey: Buffer; macKey: Buffer } {
    const { masterKey } = this.#requireUnsealed();
    return {
      encryptionKey: deriveKey(masterKey.bytes, salt, HkdfLabel.BACKUP, Buffer.from("encryption")),
      macKey: deriveKey(masterKey.bytes, salt, HkdfLabel.BACKUP, Buffer.from("authentication")),
    };
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
    const { systemKey } = this.#requireUnsealed();
    const bytes = await this.#readSystemRecord(KEYRING_KEY, RecordType.KEYRING, tx);
    if (bytes === null) throw new StorageError(StorageErrorCode.CORRUPT, "the restored storage has no keyring record");
    const draft = parseKeyring(bytes);
    // Key versions are derived from the master key by number, so a number used after the backup
    // was taken (unknown to the restored keyring, and to this process when the target is a new
    // database) must not be reused: jump past every known one by a random gap.
    const seen = [draft, this.#requireUnsealed().keyring.state];
    if (options.previousKeyring) {
      try {
        seen.push(parseKeyring(openSystemRecord(RecordType.KEYRING, KEYRING_KEY, options.previousKeyring, systemKey.bytes)));
      } catch (cause) {
        throw new StorageError(StorageErrorCode.CORRUPT, "the target's keyring from before the restore cannot be read with this installation's keys", { cause });
      }
    }
    const known = Math.max(...seen.flatMap((state) => state.versions.map((v) => v.version)));
    const version = known + 1 + randomInt(RESTORE_VERSION_GAP);
    if (version > MAX_KEY_VERSION) throw new StorageError(StorageErrorCode.CORRUPT, "key versions are exhausted");
    addKeyVersion(draft, Date.now(), version);
    draft.generation = Math.max(this.#highestGeneration, ...seen.map((state) => state.generation)) + 1;
    await tx.put(KEYRING_KEY, sealSystemRecord(RecordType.KEYRING, KEYRING_KEY, serializeKeyring(draft), systemKey.bytes, this.#random));
    this.#logger?.info("key rotated", { version, reason: "restore" });
    return version;
  }

  // ---- used by the barrier -------------------------------------------------------------------

  /** Fails with `SEALED` unless unsealed. */
  assertUnsealed(): void {
    this.#requireUnsealed();
  }

  /**
   * Resolves when this process holds a fresh encryption reservation, or `undefined` when it
   * already does. The barrier awaits it outside any transaction before writing.
   */
  prepareWrites(): Promise<void> | undefined {
    const unsealed = this.#requireUnsealed();
    if (this.#readOnly) throw new StorageError(StorageErrorCode.READ_ONLY, "this seal manager is read-only");
    if (unsealed.reserved > 0 && Date.now() - unsealed.reservedAt < this.#keyringMaxAgeMs) return undefined;
    return this.#reserve("reservation");
  }

  /**
   * Encrypts a value for `storageKey` under the active version, using one encryption of the
   * reservation. Outside transactions callers make sure one is left ({@link prepareWrites}
   * returned `undefined` in the same tick). Inside a transaction the reservation may run out:
   * it then overdraws by that transaction's writes, and the next reservation records them.
   */
  encryptValue(storageKey: string, plaintext: Uint8Array): Buffer {
    const unsealed = this.#requireUnsealed();
    if (this.#readOnly) throw new StorageError(StorageErrorCode.READ_ONLY, "this seal manager is read-only");
    const active = unsealed.keyring.active();
    if (unsealed.reserved > 0) unsealed.reserved--;
    else unsealed.overdrafts.set(active.version, (unsealed.overdrafts.get(active.version) ?? 0) + 1);
    return sealValue(storageKey, plaintext, active, this.#random);
  }

  /**
   * Decrypts a record read at `storageKey`. A key version this process does not know yet
   * (another process rotated) reloads the keyring through `read` first, which is the
   * transaction's own reader inside a transaction.
   */
  decryptValue(storageKey: string, record: Uint8Array, read: (key: string) => Promise<Buffer | null>): Buffer | Promise<Buffer> {
    const { keyring, dekCache } = this.#requireUnsealed();
    // openValue checks the header properly; this only decides whether to reload first.
    if (record.byteLength < HEADER_BYTES || keyring.knows(headerKeyVersion(record))) {
      return openValue(storageKey, record, keyring.cipherKey, dekCache);
    }
    return this.#reloadKeyring(read).then(() => {
      const reloaded = this.#requireUnsealed();
      return openValue(storageKey, record, reloaded.keyring.cipherKey, reloaded.dekCache);
    });
  }

  // ---- internals -----------------------------------------------------------------------------

  /**
   * A second manager over the same storage, unsealed with the keys of an initialisation that
   * has not committed yet: the barrier view given to `within` encrypts with it, while this
   * manager stays uninitialised and sealed. Holds copies of the keys (the caller wipes its own).
   */
  #pendingInstallation(
    config: SealConfig,
    configBytes: Buffer,
    masterKey: Buffer,
    systemKey: Buffer,
    state: KeyringState,
    reservation: number,
    now: number,
  ): SealManager {
    const pending = new SealManager(this.storage, this.#options);
    pending.#config = config;
    pending.#configBytes = configBytes;
    pending.#highestGeneration = state.generation;
    const master = new SecretBytes(Buffer.from(masterKey));
    pending.#unsealed = {
      masterKey: master,
      systemKey: new SecretBytes(Buffer.from(systemKey)),
      keyring: new Keyring(state, master, config.salt),
      dekCache: new BoundedDekCache(this.#dekCacheEntries),
      reserved: reservation,
      overdrafts: new Map(),
      reservedAt: now,
    };
    return pending;
  }

  /**
   * Takes the pending manager's unsealed state after its initialisation committed: the same
   * state a normal unseal reaches (the committed keyring, adopted at its generation, and the
   * reservation it already counts), without reading the storage again.
   */
  #adoptPending(pending: SealManager): void {
    const unsealed = pending.#unsealed;
    if (!unsealed || this.#unsealed) {
      pending.#discard();
      return;
    }
    this.#checkGeneration(unsealed.keyring.state);
    pending.#unsealed = undefined;
    this.#unsealed = unsealed;
    this.#logger?.info("unsealed", { keyVersion: unsealed.keyring.state.active });
  }

  /** Wipes the keys this manager holds, if any (no log line: `seal()` logs for itself). */
  #discard(): void {
    const unsealed = this.#unsealed;
    this.#unsealed = undefined;
    if (!unsealed) return;
    unsealed.keyring.wipe();
    unsealed.dekCache.clear();
    unsealed.systemKey.wipe();
    unsealed.masterKey.wipe();
  }

  /**
   * After an initialising transaction failed: whether it committed all the same (the storage
   * holds exactly its seal configuration: the commit's outcome was unknown, and it did
   * happen). Otherwise takes whatever configuration the storage holds (another initialiser's,
   * or none), as {@link refresh} does, and returns false. A storage that cannot be read leaves
   * the manager as it was: uninitialised.
   */
  async #settleFailedInitialization(configBytes: Buffer): Promise<boolean> {
    let stored: Buffer | null;
    try {
      stored = await this.storage.get(SEAL_CONFIG_KEY);
    } catch {
      return false;
    }
    if (stored !== null && stored.equals(configBytes)) return true;
    try {
      this.#config = stored === null ? undefined : parseSealConfig(stored);
      this.#configBytes = stored ?? undefined;
    } catch {
      // A damaged configuration: refresh() reports it on the next call.
    }
    return false;
  }

  async #addShare(share: string | Uint8Array): Promise<SealStatus> {
    const config = await this.#requireConfig();
    if (this.#unsealed) return this.status();
    const bytes = decodeShare(share, shareLength(config));
    if (this.#progress.some((given) => constantTimeEqual(given, bytes))) {
      bytes.fill(0);
      return this.status();
    }
    this.#progress.push(bytes);
    if (this.#nonce === "") this.#nonce = randomUUID();
    if (this.#progress.length < config.threshold) return this.status();

    const shares = this.#progress;
    this.#progress = [];
    this.#nonce = "";
    let unsealKey: Buffer | undefined;
    try {
      unsealKey = await combineShares(shares, config);
      await this.#openWithUnsealKey(unsealKey, config);
    } catch (error) {
      // Wrong shares, in whatever way, get the same generic failure (from combineShares or
      // the root key record). Anything after the root key opened (the shares were right) is
      // reported as it is: a damaged keyring, the database being down.
      if (SealError.isInstance(error)) throw new SealError(SealErrorCode.UNSEAL_FAILED, UNSEAL_FAILED_MESSAGE);
      throw error;
    } finally {
      unsealKey?.fill(0);
      for (const given of shares) given.fill(0);
    }
    this.#logger?.info("unsealed", { keyVersion: (this.#unsealed as Unsealed | undefined)?.keyring.state.active });
    return this.status();
  }

  async #openWithUnsealKey(unsealKey: Uint8Array, config: SealConfig): Promise<void> {
    const rootRecord = await this.storage.get(ROOT_KEY_KEY);
    if (rootRecord === null) throw new StorageError(StorageErrorCode.CORRUPT, "the root key record is missing");
    const wrapKey = deriveKey(unsealKey, config.salt, HkdfLabel.ROOT_KEY_WRAP);
    let masterKey: SecretBytes;
    try {
      masterKey = new SecretBytes(openSystemRecord(RecordType.ROOT_KEY, ROOT_KEY_KEY, rootRecord, wrapKey, sealConfigDigest(this.#configBytes as Buffer)));
    } catch {
      // The root key record's tag is the judge of the shares (or of an edited seal config).
      throw new SealError(SealErrorCode.UNSEAL_FAILED, UNSEAL_FAILED_MESSAGE);
    } finally {
      wrapKey.fill(0);
    }
    const systemKey = new SecretBytes(deriveKey(masterKey.bytes, config.salt, HkdfLabel.SYSTEM));
    try {
      const keyringRecord = await this.storage.get(KEYRING_KEY);
      if (keyringRecord === null) throw new StorageError(StorageErrorCode.CORRUPT, "the keyring record is missing");
      let state: KeyringState;
      try {
        state = parseKeyring(openSystemRecord(RecordType.KEYRING, KEYRING_KEY, keyringRecord, systemKey.bytes));
      } catch (cause) {
        throw new StorageError(StorageErrorCode.CORRUPT, "the shares are right, but the keyring record is damaged", { cause });
      }
      if (this.#unsealed) {
        // Unsealed meanwhile (an initialisation that stays unsealed): keep that state.
        systemKey.wipe();
        masterKey.wipe();
        return;
      }
      this.#checkGeneration(state);
      this.#unsealed = {
        masterKey,
        systemKey,
        keyring: new Keyring(state, masterKey, config.salt),
        dekCache: new BoundedDekCache(this.#dekCacheEntries),
        reserved: 0,
        overdrafts: new Map(),
        reservedAt: 0,
      };
    } catch (error) {
      systemKey.wipe();
      masterKey.wipe();
      throw error;
    }
    if (this.#readOnly) return;
    try {
      await this.#reserve("reservation");
    } catch (error) {
      this.seal();
      throw error;
    }
  }

  /**
   * Reserves a block of encryptions in the stored keyring (rotating first when the block would
   * pass the limit, or when `reason` is a manual rotation), in one transaction of the raw
   * storage, and adopts the keyring it wrote. Single-flight: concurrent callers share it.
   */
  #reserve(reason: "reservation" | "manual", audit?: AuditEntry): Promise<void> {
    if (reason === "reservation" && this.#reserving) return this.#reserving;
    const run = (async () => {
      const unsealed = this.#requireUnsealed();
      // Overdrafts are added to the versions they were made under; taken now, put back if
      // the reservation fails, so they are recorded exactly once.
      const overdrafts = new Map(unsealed.overdrafts);
      unsealed.overdrafts.clear();
      let rotatedTo = 0;
      try {
        await this.#updateKeyring((draft, now) => {
          rotatedTo = 0;
          for (const [version, count] of overdrafts) {
            const used = draft.versions.find((v) => v.version === version);
            if (used) used.encryptions += count;
          }
          let active = draft.versions.find((v) => v.version === draft.active) as KeyVersionInfo;
          if (reason === "manual" || active.encryptions + this.#reservation > this.#rotateAfter) {
            rotatedTo = addKeyVersion(draft, now);
            active = draft.versions.find((v) => v.version === rotatedTo) as KeyVersionInfo;
          }
          active.encryptions += this.#reservation;
        }, audit);
      } catch (error) {
        for (const [version, count] of overdrafts) unsealed.overdrafts.set(version, (unsealed.overdrafts.get(version) ?? 0) + count);
        throw error;
      }
      const current = this.#requireUnsealed();
      current.reserved = this.#reservation;
      current.reservedAt = Date.now();
      if (rotatedTo > 0) {
        this.#logger?.info("key rotated", { version: rotatedTo, reason: reason === "manual" ? "requested" : "encryption limit" });
      }
    })();
    if (reason === "reservation") {
      this.#reserving = run;
      void run
        .finally(() => {
          if (this.#reserving === run) this.#reserving = undefined;
        })
        .catch(() => undefined);
    }
    return run;
  }

  /**
   * Reads the stored keyring in a transaction, applies `change`, writes it back with the next
   * generation, and adopts it. The stored keyring is the only truth: the change is applied to
   * what storage holds now, never to this process's possibly stale copy.
   */
  async #updateKeyring(change: (draft: KeyringState, now: number) => void, audit?: AuditEntry): Promise<KeyringState> {
    const systemKey = this.#requireUnsealed().systemKey;
    const state = await this.storage.transaction(async (tx) => {
      const draft = await this.#readKeyring(tx);
      change(draft, Date.now());
      draft.generation++;
      await tx.put(KEYRING_KEY, sealSystemRecord(RecordType.KEYRING, KEYRING_KEY, serializeKeyring(draft), systemKey.bytes, this.#random));
      if (audit) {
        if (!isAuditingTransaction(tx)) throw new StorageError(StorageErrorCode.INTERNAL, "the storage cannot write audit rows inside a transaction");
        await tx.appendAudit(audit);
      }
      return draft;
    });
    this.#adoptKeyring(state);
    return state;
  }

  async #readKeyring(reader: Pick<Transaction, "get">): Promise<KeyringState> {
    const bytes = await this.#readSystemRecord(KEYRING_KEY, RecordType.KEYRING, reader);
    if (bytes === null) throw new StorageError(StorageErrorCode.CORRUPT, "the keyring record is missing");
    const state = parseKeyring(bytes);
    this.#checkGeneration(state);
    return state;
  }

  #reloadKeyring(read: (key: string) => Promise<Buffer | null>): Promise<void> {
    if (this.#reloading) return this.#reloading;
    const run = (async () => {
      const state = await this.#readKeyring({ get: read });
      this.#adoptKeyring(state);
      this.#logger?.info("keyring reloaded", { generation: state.generation, active: state.active });
    })();
    this.#reloading = run;
    void run.finally(() => {
      if (this.#reloading === run) this.#reloading = undefined;
    }).catch(() => undefined);
    return run;
  }

  #adoptKeyring(state: KeyringState): void {
    const unsealed = this.#requireUnsealed();
    this.#checkGeneration(state);
    if (state.generation === unsealed.keyring.state.generation) return;
    const previous = unsealed.keyring;
    // The reservation was for the old active version: the next write reserves under the new one.
    if (previous.state.active !== state.active) unsealed.reserved = 0;
    unsealed.keyring = new Keyring(state, unsealed.masterKey, (this.#config as SealConfig).salt);
    unsealed.dekCache.clear();
    previous.wipe();
  }

  // A keyring older than one this process has seen means someone wrote an old copy back.
  #checkGeneration(state: KeyringState): void {
    if (state.generation < this.#highestGeneration) {
      throw new StorageError(StorageErrorCode.CORRUPT, `keyring generation ${state.generation} is older than ${this.#highestGeneration}, seen before: refusing a rollback`);
    }
    this.#highestGeneration = state.generation;
  }

  async #readSystemRecord(key: string, type: RecordType, reader: Pick<Transaction, "get"> = this.storage): Promise<Buffer | null> {
    const systemKey = this.#requireUnsealed().systemKey;
    const record = await reader.get(key);
    if (record === null) return null;
    return openSystemRecord(type, key, record, systemKey.bytes);
  }

  #sealSystem(type: RecordType, key: string, plaintext: Uint8Array): Buffer {
    return sealSystemRecord(type, key, plaintext, this.#requireUnsealed().systemKey.bytes, this.#random);
  }

  async #requireConfig(): Promise<SealConfig> {
    if (!this.#config) await this.refresh();
    if (!this.#config) throw new SealError(SealErrorCode.NOT_INITIALIZED, "the storage is not initialised");
    return this.#config;
  }

  #requireUnsealed(): Unsealed {
    if (!this.#unsealed) throw new StorageError(StorageErrorCode.SEALED, "the barrier is sealed");
    return this.#unsealed;
  }

  #clearProgress(): void {
    for (const share of this.#progress) share.fill(0);
    this.#progress = [];
    this.#nonce = "";
  }
}

function positiveInteger(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new SealError(SealErrorCode.INVALID_ARGUMENT, `${name} must be a positive integer, got ${String(value)}`);
  }
  return value;
}
