import type { Transaction } from "@egide/storage-core";
import type { PasswordHash } from "../password-hash.js";
import type { TokenSettings } from "../token-settings.js";

/** A userpass user as stored (below `<mount data>/user/<name>`): the password only as its scrypt hash. */
export interface UserEntry extends TokenSettings {
  password_hash: PasswordHash;
}

/** The storage of one userpass mount: `user/<name>` per user, through the barrier. */
export class UserpassStore {
  constructor(readonly prefix: string) {}

  async user(reader: Pick<Transaction, "get">, name: string): Promise<UserEntry | null> {
    const raw = await reader.get(`${this.prefix}user/${name}`);
    return raw === null ? null : (JSON.parse(raw.toString("utf8")) as UserEntry);
  }

  async names(tx: Pick<Transaction, "list">): Promise<string[]> {
    return (await tx.list(`${this.prefix}user/`)).filter((key) => !key.endsWith("/"));
  }

  async put(tx: Pick<Transaction, "put">, name: string, user: UserEntry): Promise<void> {
    await tx.put(`${this.prefix}user/${name}`, Buffer.from(JSON.stringify(user), "utf8"));
  }

  async delete(tx: Pick<Transaction, "delete">, name: string): Promise<void> {
    await tx.delete(`${this.prefix}user/${name}`);
  }
}
