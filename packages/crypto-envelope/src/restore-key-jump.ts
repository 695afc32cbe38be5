import { randomInt } from "node:crypto";
import { StorageError, StorageErrorCode } from "@egide/storage-core";
import type { Transaction } from "@egide/storage-core";
import { addKeyVersion, parseKeyring, serializeKeyring } from "./keyring.js";
import type { KeyringStore } from "./keyring-store.js";
import { RecordType } from "./record-format.js";
import { KEYRING_KEY } from "./reserved-keys.js";
import type { SealState } from "./seal-state.js";
import { openSystemRecord, sealSystemRecord } from "./sealed-record.js";

/** The new key version after a restore lies this far (at most) past every known one. */
const RESTORE_VERSION_GAP = 1 << 20;
/** Key versions are stored as uint32. */
const MAX_KEY_VERSION = 0xffffffff;

/**
 * The key jump after a restore, run inside the transaction that restored a backup of this
 * installation: takes the restored keyring (whose generation may be older than one this
 * process has seen, since a restore is a deliberate rollback), adds a key version and makes it
 * active, and writes it with a generation above every one seen. So no key version's encryption
 * count understates the encryptions made under it after the backup was taken, and processes
 * that had seen a newer keyring accept this one. Returns the new active version.
 *
 * `previousKeyring` is the target's keyring record from before the restore, when it had one:
 * its versions and generation count as seen too.
 */
export async function rotateAfterRestore(
  state: SealState,
  keyring: KeyringStore,
  tx: Transaction,
  options: { previousKeyring?: Uint8Array },
): Promise<number> {
  const { systemKey } = state.requireUnsealed();
  // Read without the generation check: the restored keyring is expected to be older.
  const bytes = await keyring.readSystemRecord(KEYRING_KEY, RecordType.KEYRING, tx);
  if (bytes === null) throw new StorageError(StorageErrorCode.CORRUPT, "the restored storage has no keyring record");
  const draft = parseKeyring(bytes);
  // Key versions are derived from the master key by number, so a number used after the backup
  // was taken (unknown to the restored keyring, and to this process when the target is a new
  // database) must not be reused: jump past every known one by a random gap.
  const seen = [draft, state.requireUnsealed().keyring.state];
  if (options.previousKeyring) {
    try {
      seen.push(parseKeyring(openSystemRecord(RecordType.KEYRING, KEYRING_KEY, options.previousKeyring, systemKey.bytes)));
    } catch (cause) {
      throw new StorageError(
        StorageErrorCode.CORRUPT,
        "the target's keyring from before the restore cannot be read with this installation's keys",
        { cause },
      );
    }
  }
  const known = Math.max(...seen.flatMap((keyringState) => keyringState.versions.map((v) => v.version)));
  const version = known + 1 + randomInt(RESTORE_VERSION_GAP);
  if (version > MAX_KEY_VERSION) throw new StorageError(StorageErrorCode.CORRUPT, "key versions are exhausted");
  addKeyVersion(draft, Date.now(), version);
  draft.generation = Math.max(state.highestGeneration, ...seen.map((keyringState) => keyringState.generation)) + 1;
  await tx.put(
    KEYRING_KEY,
    sealSystemRecord(RecordType.KEYRING, KEYRING_KEY, serializeKeyring(draft), systemKey.bytes, state.settings.random),
  );
  state.settings.logger?.info("key rotated", { version, reason: "restore" });
  return version;
}
