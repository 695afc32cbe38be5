/**
 * The methods Vault's API documentation gives its endpoints. `LIST` is a list request (`LIST`,
 * or `GET ?list=true`); `POST` stands for `POST` and `PUT`, which Vault treats alike.
 */
export type VaultMethod = "GET" | "HEAD" | "LIST" | "POST" | "PATCH" | "DELETE";

/**
 * One endpoint as Vault's documentation lists it: the method, a space, and the path template
 * without its leading `/` (`"POST sys/mounts/:path"`). Parameters are `:name` segments; their
 * names do not matter when endpoints are compared (`:role_name` is `:name`).
 */
export type VaultEndpoint = `${VaultMethod} ${string}`;

/** One family of Vault's HTTP API: one page of its API documentation. */
export interface VaultFamily {
  /**
   * The page, below `website/content/api-docs/` in hashicorp/vault and without `.mdx`
   * (`system/mounts`, `auth/token`, `secret/kv/kv-v2`); its first segment is the area.
   */
  doc: string;
  /** The family's name in the table (`/sys/mounts`, `Token`, `KV version 2`). */
  title: string;
  /**
   * Every endpoint of the page, for the families Egide serves at least in part (or means to).
   * Absent for the families listed by name only: they render as not supported.
   */
  endpoints?: readonly VaultEndpoint[];
  /** A hand-written note on differences in behaviour, shown in the table as is. */
  note?: string;
}

/** A route Egide serves that Vault has not: listed in its own section of the document. */
export interface EgideExtension {
  /** The route's declared template (`sys/storage/backup`). */
  template: string;
  /** What it does, in one sentence. */
  description: string;
}
