import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { KeyringStore } from "./keyring-store.js";
import { HEADER_BYTES, headerKeyVersion } from "./record-format.js";
import type { SealState } from "./seal-state.js";
import { openValue, sealValue } from "./value-record.js";

/**
 * What the barrier needs from a seal manager's keys, and nothing more. Not public: a consumer
 * holding these could write records past the barrier's checks (reserved keys, value size,
 * transaction guards), so they are reachable only through {@link barrierKeyAccess}, from a
 * module the package does not export.
 */
export interface BarrierKeyAccess {
  /** Fails with `SEALED` unless unsealed. */
  assertUnsealed(): void;
  /**
   * Resolves when this process holds a fresh encryption reservation, or `undefined` when it
   * already does. The barrier awaits it outside any transaction before writing.
   */
  prepareWrites(): Promise<void> | undefined;
  /**
   * Encrypts a value for `storageKey` under the active version, using one encryption of the
   * reservation. Outside transactions callers make sure one is left (`prepareWrites` returned
   * `undefined` in the same tick). Inside a transaction the reservation may run out: it then
   * overdraws by that transaction's writes, and the next reservation records them.
   */
  encryptValue(storageKey: string, plaintext: Uint8Array): Buffer;
  /**
   * Decrypts a record read at `storageKey`. A key version this process does not know yet
   * (another process rotated) reloads the keyring through `read` first, which is the
   * transaction's own reader inside a transaction.
   */
  decryptValue(storageKey: string, record: Uint8Array, read: (key: string) => Promise<Buffer | null>): Buffer | Promise<Buffer>;
}

/** The key access over one manager's state and keyring. */
export function createBarrierKeyAccess(state: SealState, keyring: KeyringStore): BarrierKeyAccess {
  return {
    assertUnsealed(): void {
      state.requireUnsealed();
    },
    prepareWrites: () => keyring.prepareWrites(),
    encryptValue(storageKey, plaintext) {
      const unsealed = state.requireUnsealed();
      if (state.settings.readOnly) throw new StorageError(StorageErrorCode.READ_ONLY, "this seal manager is read-only");
      const active = unsealed.keyring.active();
      if (unsealed.reserved > 0) unsealed.reserved--;
      else unsealed.overdrafts.set(active.version, (unsealed.overdrafts.get(active.version) ?? 0) + 1);
      return sealValue(storageKey, plaintext, active, state.settings.random);
    },
    decryptValue(storageKey, record, read) {
      const { keyring: current, dekCache } = state.requireUnsealed();
      // openValue checks the header properly; this only decides whether to reload first.
      if (record.byteLength < HEADER_BYTES || current.knows(headerKeyVersion(record))) {
        return openValue(storageKey, record, current.cipherKey, dekCache);
      }
      return keyring.reload(read).then(() => {
        const reloaded = state.requireUnsealed();
        return openValue(storageKey, record, reloaded.keyring.cipherKey, reloaded.dekCache);
      });
    },
  };
}

// Keyed by the seal manager object; a WeakMap keeps the access from outliving its manager and
// gives consumers no property, symbol or method to find it by.
const registry = new WeakMap<object, BarrierKeyAccess>();

/** Links `owner` (a seal manager) to its key access; called once, by its constructor. */
export function registerBarrierKeyAccess(owner: object, access: BarrierKeyAccess): void {
  registry.set(owner, access);
}

/**
 * The key access of `owner`, a seal manager. Only the barrier calls this (and the tests, which
 * import this module directly). Fails with `INTERNAL` when `owner` is not a seal manager of this
 * copy of the package.
 */
export function barrierKeyAccess(owner: object): BarrierKeyAccess {
  const access = registry.get(owner);
  if (!access) throw new StorageError(StorageErrorCode.INTERNAL, "the barrier needs a SealManager opened with SealManager.open");
  return access;
}
