export { BackupError, BackupErrorCode } from "./backup-error.js";
export type { BackupKeySource } from "./backup-key-source.js";
export {
  BACKUP_MAGIC,
  BACKUP_FORMAT_VERSION,
  DEFAULT_CHUNK_BYTES,
  MIN_CHUNK_BYTES,
  MAX_CHUNK_BYTES,
  HEADER_FIXED_BYTES,
  HEADER_MAC_BYTES,
  encodeHeaderBody,
  headerMac,
} from "./backup-header.js";
export type { BackupHeader } from "./backup-header.js";
export { BackupWriter, UNSEAL_RECORD_KEYS } from "./backup-writer.js";
export type { BackupWriterOptions } from "./backup-writer.js";
export { BackupReader, readBackupHeader, verifyBackup } from "./backup-reader.js";
export type { BackupProgress, BackupSummary } from "./backup-reader.js";
export { ByteReader } from "./byte-reader.js";
export { CHUNK_OVERHEAD_BYTES, chunkNonce, sealChunk, openChunk } from "./chunk-cipher.js";
export { RecordDigest } from "./record-digest.js";
export type { RecordSummary } from "./record-digest.js";
export { encodeRecord, encodeEnd, END_BYTES } from "./record-encoding.js";
export { restoreBackup } from "./restore-backup.js";
export type { RestoreOptions, RestoreReport } from "./restore-backup.js";
export { restoreInstallation } from "./restore-installation.js";
export type {
  RestoreInstallationKeys,
  RestoreInstallationOptions,
  RestoreInstallationReport,
  RestoreKeySource,
} from "./restore-installation.js";
export { migrateRecords, MIGRATION_PROGRESS_KEY, MAX_BATCH_RECORDS } from "./migrate-records.js";
export type { MigrateOptions, MigrateReport } from "./migrate-records.js";
export { summarizeStorage } from "./storage-summary.js";
export { clearStorage } from "./clear-storage.js";
export { holdsUserRecords } from "./user-records.js";
export { RecordsView } from "./records-view.js";
