import type { AuditEntry } from "@egide/storage-core";
import type { KeyVersionInfo, KeyVersionState } from "./keyring.js";
import type { KeyringStore } from "./keyring-store.js";
import { RecordType } from "./record-format.js";
import { REWRAP_PROGRESS_KEY, isReservedKey } from "./reserved-keys.js";
import { runRewrap } from "./rewrap.js";
import type { RewrapOptions, RewrapReport } from "./rewrap.js";
import { SealError, SealErrorCode } from "./seal-error.js";
import type { SealState } from "./seal-state.js";
import { valueKeyVersion } from "./value-record.js";

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

/**
 * The life of key versions: rotation adds one, rewrap moves every record to the active one,
 * retirement makes an old one unreadable once nothing uses it. The background rewrap is kept
 * here so that sealing can stop it.
 */
export class KeyRotation {
  readonly #state: SealState;
  readonly #keyring: KeyringStore;
  #background: { controller: AbortController; done: Promise<RewrapReport | undefined> } | undefined;

  constructor(state: SealState, keyring: KeyringStore) {
    this.#state = state;
    this.#keyring = keyring;
  }

  /** The keyring's state. Fails with `SEALED` while sealed. */
  keyStatus(): KeyStatus {
    const state = this.#state.requireUnsealed().keyring.state;
    const active = state.versions.find((v) => v.version === state.active) as KeyVersionInfo;
    return {
      term: state.active,
      installTime: new Date(active.createdAt).toISOString(),
      encryptions: active.encryptions,
      rotateAfterEncryptions: this.#state.settings.rotateAfter,
      versions: state.versions.map((v) => ({
        version: v.version,
        state: v.state,
        createdAt: new Date(v.createdAt).toISOString(),
        encryptions: v.encryptions,
      })),
    };
  }

  /** Adds a key version and makes it active; see `SealManager.rotate`. */
  async rotate(audit: AuditEntry | undefined): Promise<KeyStatus> {
    await this.#keyring.reserve("manual", audit);
    return this.keyStatus();
  }

  /** Moves every record to the active key version; see `SealManager.rewrap`. */
  async rewrap(options: RewrapOptions): Promise<RewrapReport> {
    const state = this.#state;
    state.requireUnsealed();
    return runRewrap(
      {
        storage: state.storage,
        random: state.settings.random,
        logger: state.settings.logger,
        // Looked up on every call: a seal during the rewrap must stop it with SEALED.
        activeKey: () => state.requireUnsealed().keyring.active(),
        keyFor: (version) => state.requireUnsealed().keyring.keyFor(version),
        loadProgress: () => this.#keyring.readSystemRecord(REWRAP_PROGRESS_KEY, RecordType.REWRAP_PROGRESS),
        saveProgress: (bytes) =>
          state.storage.put(REWRAP_PROGRESS_KEY, this.#keyring.sealSystemRecord(RecordType.REWRAP_PROGRESS, REWRAP_PROGRESS_KEY, bytes)),
      },
      options,
    );
  }

  /** Starts a rewrap in the background, one at a time; see `SealManager.rewrapInBackground`. */
  rewrapInBackground(options: Omit<RewrapOptions, "signal">): Promise<RewrapReport | undefined> {
    if (this.#background) return this.#background.done;
    const controller = new AbortController();
    const done = this.rewrap({ skipIfDone: true, ...options, signal: controller.signal }).then(
      (report) => report,
      (error: unknown) => {
        this.#state.settings.logger?.warn("background rewrap stopped", { error: (error as Error)?.message ?? String(error) });
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

  /** Stops the background rewrap after its current batch (on seal); its progress is stored. */
  stopBackground(): void {
    this.#background?.controller.abort();
  }

  /** Retires `version`, refused while anything may still use it; see `SealManager.retire`. */
  async retire(version: number): Promise<KeyStatus> {
    const unsealed = this.#state.requireUnsealed();
    const state = unsealed.keyring.state;
    const info = state.versions.find((v) => v.version === version);
    if (!info) throw new SealError(SealErrorCode.INVALID_ARGUMENT, `key version ${version} does not exist`);
    if (info.state === "retired") return this.keyStatus();
    if (info.state === "active") throw new SealError(SealErrorCode.KEY_VERSION_IN_USE, `key version ${version} is active; rotate first`);
    // Another process may still encrypt under the previous active version until it reloads
    // the keyring, which it does at the latest keyringMaxAgeMs after the rotation.
    const active = state.versions.find((v) => v.version === state.active) as KeyVersionInfo;
    const waitMs = active.createdAt + this.#state.settings.keyringMaxAgeMs - Date.now();
    if (waitMs > 0) {
      throw new SealError(
        SealErrorCode.KEY_VERSION_IN_USE,
        `key version ${version} may still be in use by other processes for ${Math.ceil(waitMs / 1000)} s`,
      );
    }
    let remaining = 0;
    for await (const entry of this.#state.storage.scan("")) {
      if (isReservedKey(entry.key)) continue;
      if (valueKeyVersion(entry.value) === version) remaining++;
    }
    if (remaining > 0) {
      throw new SealError(SealErrorCode.KEY_VERSION_IN_USE, `${remaining} records still use key version ${version}; run rewrap first`);
    }
    await this.#keyring.update((draft) => {
      const target = draft.versions.find((v) => v.version === version);
      if (target && target.state === "decrypt") target.state = "retired";
    });
    this.#state.settings.logger?.info("key version retired", { version });
    return this.keyStatus();
  }
}
