import { randomUUID } from "node:crypto";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { constantTimeEqual } from "./constant-time.js";
import { HkdfLabel, deriveKey } from "./hkdf.js";
import { parseKeyring } from "./keyring.js";
import type { KeyringState } from "./keyring.js";
import type { KeyringStore } from "./keyring-store.js";
import { RecordType } from "./record-format.js";
import { KEYRING_KEY, ROOT_KEY_KEY } from "./reserved-keys.js";
import { sealConfigDigest } from "./seal-config.js";
import type { SealConfig } from "./seal-config.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import type { SealState, UnsealedKeys } from "./seal-state.js";
import { SecretBytes } from "./secret-bytes.js";
import { openSystemRecord } from "./sealed-record.js";
import { combineShares, decodeShare, shareLength } from "./unseal-shares.js";

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

// One message for every wrong combination, so a failure says nothing about which share is wrong.
const UNSEAL_FAILED_MESSAGE = "unseal failed: the shares do not open this installation";

/**
 * The shares of the current unseal attempt, and the unseal itself once the threshold is
 * reached: the shares are combined into the unseal key, which opens the root key record; the
 * master key then opens the keyring, and the first encryption reservation is made.
 */
export class UnsealProgress {
  readonly #state: SealState;
  readonly #keyring: KeyringStore;
  /** Seals the whole manager: called when the unseal opened the keys but could not reserve. */
  readonly #seal: () => void;
  #shares: Buffer[] = [];
  #nonce = "";
  #attempt: Promise<unknown> = Promise.resolve();

  constructor(state: SealState, keyring: KeyringStore, seal: () => void) {
    this.#state = state;
    this.#keyring = keyring;
    this.#seal = seal;
  }

  /** The seal status in Vault's shape. */
  status(): SealStatus {
    const config = this.#state.config;
    return {
      type: "shamir",
      initialized: config !== undefined,
      sealed: this.#state.unsealed === undefined,
      t: config?.threshold ?? 0,
      n: config?.shares ?? 0,
      progress: this.#shares.length,
      nonce: this.#nonce,
    };
  }

  /** Adds one share to the attempt; see `SealManager.unseal`. */
  add(share: string | Uint8Array): Promise<SealStatus> {
    // One share at a time: a combination in progress must finish before the next share counts.
    const run = this.#attempt.then(() => this.#addShare(share));
    this.#attempt = run.catch(() => undefined);
    return run;
  }

  /** Zeroes and forgets the shares received so far. */
  clear(): void {
    for (const share of this.#shares) share.fill(0);
    this.#shares = [];
    this.#nonce = "";
  }

  async #addShare(share: string | Uint8Array): Promise<SealStatus> {
    const config = await this.#state.requireConfig();
    if (this.#state.unsealed) return this.status();
    const bytes = decodeShare(share, shareLength(config));
    if (this.#shares.some((given) => constantTimeEqual(given, bytes))) {
      bytes.fill(0);
      return this.status();
    }
    this.#shares.push(bytes);
    if (this.#nonce === "") this.#nonce = randomUUID();
    if (this.#shares.length < config.threshold) return this.status();

    const shares = this.#shares;
    this.#shares = [];
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
    // TypeScript narrowed `unsealed` to undefined above; the awaits in between unsealed it.
    const unsealed = this.#state.unsealed as UnsealedKeys | undefined;
    this.#state.settings.logger?.info("unsealed", { keyVersion: unsealed?.keyring.state.active });
    return this.status();
  }

  async #openWithUnsealKey(unsealKey: Uint8Array, config: SealConfig): Promise<void> {
    const state = this.#state;
    const rootRecord = await state.storage.get(ROOT_KEY_KEY);
    if (rootRecord === null) throw new StorageError(StorageErrorCode.CORRUPT, "the root key record is missing");
    const wrapKey = deriveKey(unsealKey, config.salt, HkdfLabel.ROOT_KEY_WRAP);
    let masterKey: SecretBytes;
    try {
      masterKey = new SecretBytes(
        openSystemRecord(RecordType.ROOT_KEY, ROOT_KEY_KEY, rootRecord, wrapKey, sealConfigDigest(state.configBytes as Buffer)),
      );
    } catch {
      // The root key record's tag is the judge of the shares (or of an edited seal config).
      throw new SealError(SealErrorCode.UNSEAL_FAILED, UNSEAL_FAILED_MESSAGE);
    } finally {
      wrapKey.fill(0);
    }
    const systemKey = new SecretBytes(deriveKey(masterKey.bytes, config.salt, HkdfLabel.SYSTEM));
    try {
      const keyringRecord = await state.storage.get(KEYRING_KEY);
      if (keyringRecord === null) throw new StorageError(StorageErrorCode.CORRUPT, "the keyring record is missing");
      let keyringState: KeyringState;
      try {
        keyringState = parseKeyring(openSystemRecord(RecordType.KEYRING, KEYRING_KEY, keyringRecord, systemKey.bytes));
      } catch (cause) {
        throw new StorageError(StorageErrorCode.CORRUPT, "the shares are right, but the keyring record is damaged", { cause });
      }
      if (state.unsealed) {
        // Unsealed meanwhile (an initialisation that stays unsealed): keep that state.
        systemKey.wipe();
        masterKey.wipe();
        return;
      }
      state.checkGeneration(keyringState);
      state.unsealed = state.newUnsealedKeys(masterKey, systemKey, keyringState, config.salt, 0, 0);
    } catch (error) {
      systemKey.wipe();
      masterKey.wipe();
      throw error;
    }
    if (state.settings.readOnly) return;
    try {
      await this.#keyring.reserve("reservation");
    } catch (error) {
      this.#seal();
      throw error;
    }
  }
}
