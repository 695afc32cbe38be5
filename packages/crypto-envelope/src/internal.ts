/**
 * `@egide/crypto-envelope/internal`: the raw primitives beneath the barrier, for the monorepo's
 * own packages (the backup file format encrypts its chunks with the same AES-GCM), benchmarks
 * and tests. Not covered by semver: these may change in any release. Nothing here reaches an
 * installation's keys; applications use `SealManager` and `barrier` from the package root.
 */
export { gcmSeal, gcmOpen, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from "./aes-gcm.js";
export type { GcmSealed } from "./aes-gcm.js";
export { hkdfSha256, hkdfInfo, deriveKey, HkdfLabel } from "./hkdf.js";
export { sealValue, openValue, rewrapValue, valueKeyVersion } from "./value-record.js";
export type { VersionedKey } from "./value-record.js";
export { RECORD_FORMAT_V1, RecordType, VALUE_RECORD_OVERHEAD, SEALED_RECORD_OVERHEAD, HEADER_BYTES } from "./record-format.js";
