import { MAX_KEY_BYTES } from "@egide/storage-core";
import { badRequest } from "../http/vault-error.js";
import { isJsonObject, type JsonObject } from "./kv-input.js";
import { isValidFolderPath, isValidSecretPath } from "./kv-paths.js";
import { missing, noContent, ok, type KvResponse } from "./kv-response.js";
import { parseDurationSeconds } from "./kv-time.js";
import type { KvReader, KvWriter } from "./kv-v2-engine.js";

/**
 * Vault's default lease TTL (32 days, `sys/mounts/<path>/tune`'s `default_lease_ttl`): what a
 * KV version 1 read answers as `lease_duration` when the secret has no usable `ttl`.
 */
export const KV_V1_DEFAULT_LEASE_SECONDS = 2_764_800;

/** What a KV version 1 operation answers: a {@link KvResponse}, and for reads the advisory lease duration. */
export type KvV1Response = KvResponse & { leaseDuration?: number };

/**
 * The KV version 1 secrets engine of one mount (Vault's "passthrough" backend): each secret is
 * one JSON object stored at `<prefix><path>`, where `prefix` is the mount's own storage prefix
 * (`logical/<uuid>/`, so that unmounting purges it with the rest of the mount's data). No
 * versions, no metadata: a write replaces the whole secret, a delete removes it for good.
 *
 * Reads take `ctx.storage` (or a transaction); writes take the transaction of `ctx.mutate`.
 * Results are Vault-shaped; failures are `VaultError`s with Vault's messages. Paths that cannot
 * be storage keys (empty, `.`/`..` or empty segments, control characters, too long) hold
 * nothing: reads answer 404, writes 400, deletes 204.
 */
export class KvV1Engine {
  readonly prefix: string;
  /** The longest secret path (in UTF-8 bytes) whose key fits the storage key limit. */
  readonly maxPathBytes: number;

  constructor(prefix: string) {
    this.prefix = prefix;
    this.maxPathBytes = MAX_KEY_BYTES - Buffer.byteLength(prefix, "utf8");
  }

  /** Whether `path` can name a secret of this mount (a valid path whose key fits). */
  fits(path: string): boolean {
    return isValidSecretPath(path) && Buffer.byteLength(path, "utf8") <= this.maxPathBytes;
  }

  /** Vault's existence check (create vs update): whether a secret is stored at `path`. */
  async exists(store: KvReader, path: string): Promise<boolean> {
    if (!this.fits(path)) return false;
    return (await store.get(this.prefix + path)) !== null;
  }

  /**
   * `GET <mount>/<path>`: the secret's key/value pairs as `data`, with the advisory
   * `lease_duration`: the secret's own `ttl` (or legacy `lease`) field when it parses as a
   * duration, else the mount's default lease TTL. 404 when nothing is stored there.
   */
  async read(store: KvReader, path: string): Promise<KvV1Response> {
    if (!this.fits(path)) return missing();
    const raw = await store.get(this.prefix + path);
    if (raw === null) return missing();
    const data = JSON.parse(raw.toString("utf8")) as JsonObject;
    return { ...ok(data), leaseDuration: leaseDuration(data) };
  }

  /**
   * `LIST <mount>/<folder>` (or `GET ?list=true`): the secrets and folders (with a trailing
   * `/`) directly below `folder`; 404 when there are none (Vault answers an empty list so).
   */
  async list(store: KvReader, folder: string): Promise<KvV1Response> {
    const prefix = folder === "" || folder.endsWith("/") ? folder : `${folder}/`;
    if (!isValidFolderPath(prefix)) return missing();
    if (prefix !== "" && !this.fits(prefix.slice(0, -1))) return missing();
    const keys = await store.list(this.prefix + prefix);
    return keys.length === 0 ? missing() : ok({ keys });
  }

  /**
   * `POST|PUT <mount>/<path>`: stores the whole request body as the secret, replacing what was
   * there. 400 "missing path" at the mount's root, "missing data fields" for an empty body. 204.
   */
  async write(tx: KvWriter, path: string, body: JsonObject): Promise<KvV1Response> {
    if (path === "") throw badRequest("missing path");
    if (!isValidSecretPath(path)) {
      throw badRequest(
        `invalid secret path ${JSON.stringify(path)}: it must not start or end with "/", or contain empty, "." or ".." segments or control characters`,
      );
    }
    if (!this.fits(path)) throw badRequest(`invalid secret path: longer than ${this.maxPathBytes} bytes`);
    if (!isJsonObject(body) || Object.keys(body).length === 0) throw badRequest("missing data fields");
    await tx.put(this.prefix + path, Buffer.from(JSON.stringify(body), "utf8"));
    return noContent();
  }

  /** `DELETE <mount>/<path>`: removes the secret; 204 whether or not there was one. */
  async delete(tx: KvWriter, path: string): Promise<KvV1Response> {
    if (this.fits(path)) await tx.delete(this.prefix + path);
    return noContent();
  }
}

/**
 * The `lease_duration` of a read: Vault's passthrough backend takes the secret's `ttl` field
 * (or else `lease`) when it parses as a duration (seconds or `"1h"`), and the mount's default
 * lease TTL otherwise. A zero or negative value, which Vault would answer as such, falls back
 * to the default too: the field is advisory (how often to re-read) and must not tell a client
 * that a value is already stale.
 */
function leaseDuration(data: JsonObject): number {
  const raw = Object.hasOwn(data, "ttl") ? data.ttl : Object.hasOwn(data, "lease") ? data.lease : undefined;
  if (raw === undefined) return KV_V1_DEFAULT_LEASE_SECONDS;
  let seconds: number;
  try {
    seconds = parseDurationSeconds(raw, "ttl");
  } catch {
    return KV_V1_DEFAULT_LEASE_SECONDS;
  }
  return seconds > 0 && Number.isSafeInteger(seconds) ? seconds : KV_V1_DEFAULT_LEASE_SECONDS;
}
