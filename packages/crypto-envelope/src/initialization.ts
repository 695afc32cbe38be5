import type { AuditingTransaction } from "@egide/storage-core";
import { KEY_BYTES } from "./aes-gcm.js";
import { barrierTransaction } from "./barrier.js";
import { createBarrierKeyAccess } from "./barrier-key-access.js";
import type { BarrierKeyAccess } from "./barrier-key-access.js";
import { HkdfLabel, deriveKey } from "./hkdf.js";
import { initialKeyringState, serializeKeyring } from "./keyring.js";
import type { KeyVersionInfo, KeyringState } from "./keyring.js";
import { KeyringStore } from "./keyring-store.js";
import { randomBytesFrom } from "./random-source.js";
import { RecordType } from "./record-format.js";
import { KEYRING_KEY, ROOT_KEY_KEY, SEAL_CONFIG_KEY } from "./reserved-keys.js";
import { SEAL_CONFIG_FORMAT, parseSealConfig, sealConfigDigest, serializeSealConfig } from "./seal-config.js";
import type { SealConfig } from "./seal-config.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import { SealState } from "./seal-state.js";
import { SecretBytes } from "./secret-bytes.js";
import { sealSystemRecord } from "./sealed-record.js";
import { checkShareScheme, splitUnsealKey } from "./unseal-shares.js";
import type { ShareScheme } from "./unseal-shares.js";

/** What `SealManager.initialize` returns: the only time the shares exist outside their holders. */
export interface InitializeResult {
  /**
   * The unseal key shares (raw bytes; Vault prints them as `keys` in hex and `keys_base64`).
   * The caller hands them out and then wipes these buffers.
   */
  shares: Buffer[];
}

/** Options of `SealManager.initialize`. */
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
   * initialisation made: no share goes through `SealManager.unseal` or its progress, and
   * the storage is not read again. Default false: the installation starts sealed.
   */
  unseal?: boolean;
}

/**
 * Initialises the storage of `state` atomically; see `SealManager.initialize` for the
 * contract. `seal` seals the manager (keys of an earlier installation it still holds are
 * never the new one's).
 */
export async function initializeInstallation(
  state: SealState,
  seal: () => void,
  scheme: ShareScheme,
  options: InitializeOptions,
): Promise<InitializeResult> {
  checkShareScheme(scheme);
  const { random, logger, readOnly } = state.settings;
  const within = options.within;
  const stayUnsealed = options.unseal === true;
  // The pending keys serve `within` and, with `unseal`, become this manager's after the commit.
  const needsPending = within !== undefined || stayUnsealed;
  // The pending state holds one reservation from the start, counted in the first keyring.
  const reservation = needsPending && !readOnly ? state.settings.reservation : 0;
  const now = Date.now();
  const config: SealConfig = {
    format: SEAL_CONFIG_FORMAT,
    type: "shamir",
    shares: scheme.shares,
    threshold: scheme.threshold,
    salt: randomBytesFrom(random, KEY_BYTES),
    createdAt: new Date(now).toISOString(),
  };
  const configBytes = serializeSealConfig(config);
  const unsealKey = randomBytesFrom(random, KEY_BYTES);
  const masterKey = randomBytesFrom(random, KEY_BYTES);
  const rootWrapKey = deriveKey(unsealKey, config.salt, HkdfLabel.ROOT_KEY_WRAP);
  const systemKey = deriveKey(masterKey, config.salt, HkdfLabel.SYSTEM);
  let pending: PendingInstallation | undefined;
  try {
    const rootRecord = sealSystemRecord(RecordType.ROOT_KEY, ROOT_KEY_KEY, masterKey, rootWrapKey, random, sealConfigDigest(configBytes));
    const keyringState = initialKeyringState(now);
    const firstVersion = keyringState.versions[0] as KeyVersionInfo;
    firstVersion.encryptions = reservation;
    const sealKeyring = () => sealSystemRecord(RecordType.KEYRING, KEYRING_KEY, serializeKeyring(keyringState), systemKey, random);
    const keyringRecord = sealKeyring();
    const shares = await splitUnsealKey(unsealKey, scheme);
    if (needsPending) pending = pendingInstallation(state, config, configBytes, masterKey, systemKey, keyringState, reservation, now);
    const pendingUnsealed = pending?.state.unsealed;
    try {
      await state.storage.transaction(async (tx) => {
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
        const view = barrierTransaction(tx, pending.access, state.storage.type);
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
      if (!(await settleFailedInitialization(state, configBytes))) {
        pending?.state.discard();
        for (const share of shares) share.fill(0);
        throw error;
      }
      logger?.warn("initialization committed although the commit reported a failure", {
        error: (error as Error)?.message ?? String(error),
      });
    }
    // Committed: a new installation, whose keyring generations start again. Keys this
    // manager still holds belong to an earlier installation (its storage was emptied under
    // a running process): nobody can hold the new shares yet, so they are never this one's.
    if (state.unsealed) seal();
    state.config = config;
    state.configBytes = configBytes;
    state.highestGeneration = 0;
    logger?.info("initialized", { shares: scheme.shares, threshold: scheme.threshold });
    if (stayUnsealed && pending) adoptPending(state, pending.state);
    else pending?.state.discard();
    return { shares };
  } catch (error) {
    pending?.state.discard();
    throw error;
  } finally {
    unsealKey.fill(0);
    masterKey.fill(0);
    rootWrapKey.fill(0);
    systemKey.fill(0);
  }
}

/** The keys of an initialisation that has not committed yet, and the barrier's access to them. */
interface PendingInstallation {
  state: SealState;
  access: BarrierKeyAccess;
}

/**
 * A second state over the same storage, unsealed with the keys of an initialisation that has
 * not committed yet: the barrier view given to `within` encrypts with it, while the manager
 * stays uninitialised and sealed. Holds copies of the keys (the caller wipes its own).
 */
function pendingInstallation(
  state: SealState,
  config: SealConfig,
  configBytes: Buffer,
  masterKey: Buffer,
  systemKey: Buffer,
  keyringState: KeyringState,
  reservation: number,
  now: number,
): PendingInstallation {
  const pending = new SealState(state.storage, state.settings);
  pending.config = config;
  pending.configBytes = configBytes;
  pending.highestGeneration = keyringState.generation;
  pending.unsealed = pending.newUnsealedKeys(
    new SecretBytes(Buffer.from(masterKey)),
    new SecretBytes(Buffer.from(systemKey)),
    keyringState,
    config.salt,
    reservation,
    now,
  );
  return { state: pending, access: createBarrierKeyAccess(pending, new KeyringStore(pending)) };
}

/**
 * Takes the pending state's keys after its initialisation committed: the same state a normal
 * unseal reaches (the committed keyring, adopted at its generation, and the reservation it
 * already counts), without reading the storage again.
 */
function adoptPending(state: SealState, pending: SealState): void {
  const unsealed = pending.unsealed;
  if (!unsealed || state.unsealed) {
    pending.discard();
    return;
  }
  state.checkGeneration(unsealed.keyring.state);
  pending.unsealed = undefined;
  state.unsealed = unsealed;
  state.settings.logger?.info("unsealed", { keyVersion: unsealed.keyring.state.active });
}

/**
 * After an initialising transaction failed: whether it committed all the same (the storage
 * holds exactly its seal configuration: the commit's outcome was unknown, and it did
 * happen). Otherwise takes whatever configuration the storage holds (another initialiser's,
 * or none), as `refresh` does, and returns false. A storage that cannot be read leaves the
 * manager as it was: uninitialised.
 */
async function settleFailedInitialization(state: SealState, configBytes: Buffer): Promise<boolean> {
  let stored: Buffer | null;
  try {
    stored = await state.storage.get(SEAL_CONFIG_KEY);
  } catch {
    return false;
  }
  if (stored?.equals(configBytes)) return true;
  try {
    state.config = stored === null ? undefined : parseSealConfig(stored);
    state.configBytes = stored ?? undefined;
  } catch {
    // A damaged configuration: refresh() reports it on the next call.
  }
  return false;
}
