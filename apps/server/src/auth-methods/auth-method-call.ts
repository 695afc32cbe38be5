import type { LoginLockout } from "./login-lockout.js";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { FastifyReply, FastifyRequest } from "fastify";
import type { TokenStore } from "../auth/token-store.js";
import type { PathTable } from "../engines/path-table.js";
import type { JsonObject } from "../kv/kv-input.js";
import type { AuthMount } from "./auth-mount-table.js";
import type { HashLimiter } from "./hash-limiter.js";
import type { SystemTokenLimits } from "./login-token.js";

/** What every auth method handler is given: the request, its mount, and the server's services. */
export interface AuthMethodCall {
  request: FastifyRequest;
  reply: FastifyReply;
  mount: AuthMount;
  /** The mount's storage prefix (`auth/<uuid>/`). */
  prefix: string;
  /** The role or user the path names ("" when it names none). */
  name: string;
  /** The request body (`{}` for reads). */
  body: JsonObject;
  /** The encrypted storage, for reads outside a transaction. */
  storage: StorageBackend;
  tokens: TokenStore;
  limits: SystemTokenLimits;
  /** The semaphore every password hash goes through. */
  hashes: HashLimiter;
  /** Failed logins per name, and the names locked out for a while. */
  lockout: LoginLockout;
  /**
   * Runs `fn` in one transaction that commits with the request's audit row, after checking
   * inside it that the mount is still enabled (so nothing lands in a method another instance
   * has just disabled).
   */
  mutate<T>(status: number, fn: (tx: Transaction) => Promise<T>): Promise<T>;
}

/** A request path below a mount, as an auth method's router names it. */
export interface AuthMethodRoute<Kind extends string> {
  kind: Kind;
  /** The role or user named ("" when none). */
  name: string;
}

/** An auth method type: how it reads its paths, which of them are logins, and its handlers. */
export interface AuthMethodBackend<Kind extends string = string> {
  /** The route of `rest` (the path below the mount), or null when the method has no such path. */
  route(rest: string): AuthMethodRoute<Kind> | null;
  /** Whether `kind` is the login path (public: no token needed). */
  isLogin(kind: Kind): boolean;
  /** Vault's existence check for writes: whether the role or user a create-or-update names exists. */
  exists(storage: Pick<Transaction, "get">, prefix: string, route: AuthMethodRoute<Kind>): Promise<boolean>;
  /** Runs once when the method is enabled, inside the enabling transaction. */
  initialise?(tx: Transaction, prefix: string): Promise<void>;
  paths: PathTable<Kind, AuthMethodCall>;
}
