import { randomUUID } from "node:crypto";
import { deleteTree } from "@egide/storage-core";
import type { Transaction } from "@egide/storage-core";
import { keyedHash, readHmacKey } from "../secret-id-hash.js";
import type { TokenSettings } from "../token-settings.js";

/** An AppRole role as stored (below `<mount data>/role/<name>`). Its role id is stored here and, as an index, only as a keyed hash. */
export interface AppRoleEntry extends TokenSettings {
  role_id: string;
  bind_secret_id: boolean;
  /** 0: unlimited uses (Vault's meaning). */
  secret_id_num_uses: number;
  /** Seconds; 0: secret ids do not expire (Vault's meaning). */
  secret_id_ttl: number;
  secret_id_bound_cidrs: string[];
  local_secret_ids: boolean;
}

/** A secret id as stored, under the keyed hash of the secret id (never the secret id itself). */
export interface SecretIdEntry {
  accessor: string;
  /** ms since the epoch. */
  created: number;
  updated: number;
  /** ms since the epoch; null: never expires. */
  expires: number | null;
  /** Uses left; 0: unlimited. */
  num_uses: number;
  /** The TTL it was made with, seconds. */
  ttl: number;
  cidr_list: string[];
  metadata: Record<string, string>;
}

type Reader = Pick<Transaction, "get">;

/**
 * The storage of one AppRole mount (all keys below its data prefix, through the barrier):
 *
 * - `role/<name>`: the role;
 * - `role-id/<hmac(role id)>`: the role's name (login looks roles up by role id);
 * - `secret-id/<name>/<hmac(secret id)>`: a secret id's entry;
 * - `secret-id-accessor/<name>/<accessor>`: the hmac of the secret id with that accessor.
 */
export class AppRoleStore {
  constructor(readonly prefix: string) {}

  async role(reader: Reader, name: string): Promise<AppRoleEntry | null> {
    return json<AppRoleEntry>(await reader.get(`${this.prefix}role/${name}`));
  }

  async roleNames(tx: Pick<Transaction, "list">): Promise<string[]> {
    return (await tx.list(`${this.prefix}role/`)).filter((key) => !key.endsWith("/"));
  }

  /** The name of the role whose role id is `roleId`, or null. */
  async roleNameById(reader: Reader, roleId: string): Promise<string | null> {
    const key = await readHmacKey(reader, this.prefix);
    const raw = await reader.get(`${this.prefix}role-id/${keyedHash(key, roleId)}`);
    return raw === null ? null : raw.toString("utf8");
  }

  /** Writes `role` as `name`, moving its role id index when the role id changed; a role id held by another role is refused (returns false). */
  async putRole(tx: Transaction, name: string, role: AppRoleEntry, previous: AppRoleEntry | null): Promise<boolean> {
    const key = await readHmacKey(tx, this.prefix);
    if (previous === null || previous.role_id !== role.role_id) {
      const owner = await tx.get(`${this.prefix}role-id/${keyedHash(key, role.role_id)}`);
      if (owner !== null && owner.toString("utf8") !== name) return false;
      if (previous !== null) await tx.delete(`${this.prefix}role-id/${keyedHash(key, previous.role_id)}`);
      await tx.put(`${this.prefix}role-id/${keyedHash(key, role.role_id)}`, Buffer.from(name, "utf8"));
    }
    await tx.put(`${this.prefix}role/${name}`, Buffer.from(JSON.stringify(role), "utf8"));
    return true;
  }

  /** Deletes the role, its role id index and every secret id it had. */
  async deleteRole(tx: Transaction, name: string, role: AppRoleEntry): Promise<void> {
    const key = await readHmacKey(tx, this.prefix);
    await tx.delete(`${this.prefix}role/${name}`);
    await tx.delete(`${this.prefix}role-id/${keyedHash(key, role.role_id)}`);
    await deleteTree(tx, `${this.prefix}secret-id/${name}/`);
    await deleteTree(tx, `${this.prefix}secret-id-accessor/${name}/`);
  }

  /** The keyed hash of `secretId` (the name its entry is stored under). */
  async secretIdHash(reader: Reader, secretId: string): Promise<string> {
    return keyedHash(await readHmacKey(reader, this.prefix), secretId);
  }

  async secretId(reader: Reader, name: string, hash: string): Promise<SecretIdEntry | null> {
    return json<SecretIdEntry>(await reader.get(`${this.prefix}secret-id/${name}/${hash}`));
  }

  /** Stores a new secret id (by its hash) and its accessor; returns the entry. */
  async addSecretId(tx: Transaction, name: string, hash: string, entry: Omit<SecretIdEntry, "accessor">): Promise<SecretIdEntry> {
    const stored: SecretIdEntry = { accessor: randomUUID(), ...entry };
    await tx.put(`${this.prefix}secret-id/${name}/${hash}`, Buffer.from(JSON.stringify(stored), "utf8"));
    await tx.put(`${this.prefix}secret-id-accessor/${name}/${stored.accessor}`, Buffer.from(hash, "utf8"));
    return stored;
  }

  async putSecretId(tx: Transaction, name: string, hash: string, entry: SecretIdEntry): Promise<void> {
    await tx.put(`${this.prefix}secret-id/${name}/${hash}`, Buffer.from(JSON.stringify(entry), "utf8"));
  }

  /** Deletes the secret id stored under `hash` and its accessor; returns whether there was one. */
  async deleteSecretId(tx: Transaction, name: string, hash: string): Promise<boolean> {
    const entry = await this.secretId(tx, name, hash);
    if (entry === null) return false;
    await tx.delete(`${this.prefix}secret-id/${name}/${hash}`);
    await tx.delete(`${this.prefix}secret-id-accessor/${name}/${entry.accessor}`);
    return true;
  }

  /** The hash of the secret id with `accessor` on role `name`, or null. */
  async hashByAccessor(reader: Reader, name: string, accessor: string): Promise<string | null> {
    if (!isAccessor(accessor)) return null;
    const raw = await reader.get(`${this.prefix}secret-id-accessor/${name}/${accessor}`);
    return raw === null ? null : raw.toString("utf8");
  }

  async accessors(tx: Pick<Transaction, "list">, name: string): Promise<string[]> {
    return (await tx.list(`${this.prefix}secret-id-accessor/${name}/`)).filter((key) => !key.endsWith("/"));
  }
}

/** Whether `value` is the shape of an accessor this store makes (a UUID): anything else is never a storage key. */
export function isAccessor(value: string): boolean {
  if (value.length !== 36) return false;
  for (let i = 0; i < 36; i++) {
    const code = value.charCodeAt(i);
    const dash = i === 8 || i === 13 || i === 18 || i === 23;
    if (dash ? code !== 0x2d : !((code >= 0x30 && code <= 0x39) || (code >= 0x61 && code <= 0x66))) return false;
  }
  return true;
}

function json<T>(raw: Buffer | null): T | null {
  return raw === null ? null : (JSON.parse(raw.toString("utf8")) as T);
}
