import { StorageError, StorageErrorCode, isAuditingTransaction } from "@egide/storage-core";
import type { AuditEntry, Transaction } from "@egide/storage-core";
import { Keyring, addKeyVersion, parseKeyring, serializeKeyring } from "./keyring.js";
import type { KeyVersionInfo, KeyringState } from "./keyring.js";
import { RecordType } from "./record-format.js";
import { KEYRING_KEY } from "./reserved-keys.js";
import type { SealConfig } from "./seal-config.js";
import type { SealState } from "./seal-state.js";
import { openSystemRecord, sealSystemRecord } from "./sealed-record.js";

/** Why a keyring update adds encryptions: the routine reservation, or a rotation asked for. */
export type ReserveReason = "reservation" | "manual";

/**
 * The stored keyring as one process sees it: encryption reservations, the generation check
 * that refuses a rolled-back keyring, and reloads when another process changed it. The stored
 * keyring is the only truth: every change is applied to what the storage holds now, in a
 * transaction, and the result adopted; this process's copy is never written back as it is.
 */
export class KeyringStore {
  readonly #state: SealState;
  #reserving: Promise<void> | undefined;
  #reloading: Promise<void> | undefined;

  constructor(state: SealState) {
    this.#state = state;
  }

  /**
   * Resolves when this process holds a fresh encryption reservation, or `undefined` when it
   * already does (so the barrier's write path stays synchronous in the common case).
   */
  prepareWrites(): Promise<void> | undefined {
    const unsealed = this.#state.requireUnsealed();
    const { readOnly, keyringMaxAgeMs } = this.#state.settings;
    if (readOnly) throw new StorageError(StorageErrorCode.READ_ONLY, "this seal manager is read-only");
    if (unsealed.reserved > 0 && Date.now() - unsealed.reservedAt < keyringMaxAgeMs) return undefined;
    return this.reserve("reservation");
  }

  /**
   * Reserves a block of encryptions in the stored keyring (rotating first when the block would
   * pass the limit, or when `reason` is a manual rotation), in one transaction of the raw
   * storage, and adopts the keyring it wrote. Single-flight: concurrent callers share it.
   */
  reserve(reason: ReserveReason, audit?: AuditEntry): Promise<void> {
    if (reason === "reservation" && this.#reserving) return this.#reserving;
    const run = this.#reserveOnce(reason, audit);
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

  async #reserveOnce(reason: ReserveReason, audit: AuditEntry | undefined): Promise<void> {
    const { reservation, rotateAfter, logger } = this.#state.settings;
    const unsealed = this.#state.requireUnsealed();
    // Overdrafts are added to the versions they were made under; taken now, put back if
    // the reservation fails, so they are recorded exactly once.
    const overdrafts = new Map(unsealed.overdrafts);
    unsealed.overdrafts.clear();
    let rotatedTo = 0;
    try {
      await this.update((draft, now) => {
        rotatedTo = 0;
        for (const [version, count] of overdrafts) {
          const used = draft.versions.find((v) => v.version === version);
          if (used) used.encryptions += count;
        }
        let active = draft.versions.find((v) => v.version === draft.active) as KeyVersionInfo;
        if (reason === "manual" || active.encryptions + reservation > rotateAfter) {
          rotatedTo = addKeyVersion(draft, now);
          active = draft.versions.find((v) => v.version === rotatedTo) as KeyVersionInfo;
        }
        active.encryptions += reservation;
      }, audit);
    } catch (error) {
      for (const [version, count] of overdrafts) unsealed.overdrafts.set(version, (unsealed.overdrafts.get(version) ?? 0) + count);
      throw error;
    }
    // Sealed and unsealed again meanwhile is possible: the reservation goes to the current keys.
    const current = this.#state.requireUnsealed();
    current.reserved = reservation;
    current.reservedAt = Date.now();
    if (rotatedTo > 0) {
      logger?.info("key rotated", { version: rotatedTo, reason: reason === "manual" ? "requested" : "encryption limit" });
    }
  }

  /**
   * Reads the stored keyring in a transaction, applies `change`, writes it back with the next
   * generation, and adopts it. With `audit`, that row is written in the same transaction.
   */
  async update(change: (draft: KeyringState, now: number) => void, audit?: AuditEntry): Promise<KeyringState> {
    const systemKey = this.#state.requireUnsealed().systemKey;
    const state = await this.#state.storage.transaction(async (tx) => {
      const draft = await this.read(tx);
      change(draft, Date.now());
      draft.generation++;
      await tx.put(
        KEYRING_KEY,
        sealSystemRecord(RecordType.KEYRING, KEYRING_KEY, serializeKeyring(draft), systemKey.bytes, this.#state.settings.random),
      );
      if (audit) {
        if (!isAuditingTransaction(tx))
          throw new StorageError(StorageErrorCode.INTERNAL, "the storage cannot write audit rows inside a transaction");
        await tx.appendAudit(audit);
      }
      return draft;
    });
    this.adopt(state);
    return state;
  }

  /** Reads and checks the stored keyring through `reader` (a transaction's, or the storage). */
  async read(reader: Pick<Transaction, "get">): Promise<KeyringState> {
    const bytes = await this.readSystemRecord(KEYRING_KEY, RecordType.KEYRING, reader);
    if (bytes === null) throw new StorageError(StorageErrorCode.CORRUPT, "the keyring record is missing");
    const state = parseKeyring(bytes);
    this.#state.checkGeneration(state);
    return state;
  }

  /**
   * Reads the keyring again through `read` and adopts it, after a record named a key version
   * this process does not know (another process rotated). Single-flight: a burst of such
   * records costs one read.
   */
  reload(read: (key: string) => Promise<Buffer | null>): Promise<void> {
    if (this.#reloading) return this.#reloading;
    const run = (async () => {
      const state = await this.read({ get: read });
      this.adopt(state);
      this.#state.settings.logger?.info("keyring reloaded", { generation: state.generation, active: state.active });
    })();
    this.#reloading = run;
    void run
      .finally(() => {
        if (this.#reloading === run) this.#reloading = undefined;
      })
      .catch(() => undefined);
    return run;
  }

  /** Makes `state` this process's keyring (unless it already is, by generation). */
  adopt(state: KeyringState): void {
    const unsealed = this.#state.requireUnsealed();
    this.#state.checkGeneration(state);
    if (state.generation === unsealed.keyring.state.generation) return;
    const previous = unsealed.keyring;
    // The reservation was for the old active version: the next write reserves under the new one.
    if (previous.state.active !== state.active) unsealed.reserved = 0;
    unsealed.keyring = new Keyring(state, unsealed.masterKey, (this.#state.config as SealConfig).salt);
    // Cached DEKs may belong to a version the new keyring retired.
    unsealed.dekCache.clear();
    previous.wipe();
  }

  /** Opens one of the barrier's own records, under the system key; `null` when absent. */
  async readSystemRecord(key: string, type: RecordType, reader: Pick<Transaction, "get"> = this.#state.storage): Promise<Buffer | null> {
    const systemKey = this.#state.requireUnsealed().systemKey;
    const record = await reader.get(key);
    if (record === null) return null;
    return openSystemRecord(type, key, record, systemKey.bytes);
  }

  /** Seals one of the barrier's own records under the system key. */
  sealSystemRecord(type: RecordType, key: string, plaintext: Uint8Array): Buffer {
    return sealSystemRecord(type, key, plaintext, this.#state.requireUnsealed().systemKey.bytes, this.#state.settings.random);
  }
}
