// The public API. Raw AES-GCM, HKDF and record primitives are in `./internal` (the
// `@egide/crypto-envelope/internal` subpath); the barrier's access to the keys is exported nowhere.
export { barrier } from "./barrier.js";
export type { BarrierOptions } from "./barrier.js";
export { SealManager } from "./seal-manager.js";
export type { SealManagerOptions, SealLogger } from "./seal-settings.js";
export type { SealStatus } from "./unseal-progress.js";
export type { InitializeOptions, InitializeResult } from "./initialization.js";
export type { KeyStatus } from "./key-rotation.js";
export type { RewrapOptions, RewrapReport } from "./rewrap.js";
export { SealError, SealErrorCode } from "./seal-error.js";
export { readUnsealKey, writeUnsealKeyFile } from "./unseal-key-source.js";
export type { UnsealKeySource } from "./unseal-key-source.js";
export { checkShareScheme, decodeShare, shareLength, MAX_SHARES } from "./unseal-shares.js";
export type { ShareScheme } from "./unseal-shares.js";
export type { KeyVersionState, KeyVersionInfo } from "./keyring.js";
export { SecretBytes } from "./secret-bytes.js";
export { systemRandom } from "./random-source.js";
export type { RandomSource } from "./random-source.js";
export { constantTimeEqual } from "./constant-time.js";
export { RESERVED_PREFIX, SEAL_CONFIG_KEY, ROOT_KEY_KEY, KEYRING_KEY, REWRAP_PROGRESS_KEY, isReservedKey } from "./reserved-keys.js";
