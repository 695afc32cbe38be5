import type { AuditEntry, AuditingBackend, StorageBackend, Transaction } from "@egide/storage-core";
import type { SealManager } from "@egide/crypto-envelope";
import type { FastifyRequest } from "fastify";
import type { Registry } from "prom-client";

/** The capabilities of Vault's ACL policies. */
export type Capability = "create" | "read" | "update" | "patch" | "delete" | "list" | "sudo" | "deny";

/** Vault's request operations, as audit rows and policies name them. */
export type Operation = "create" | "read" | "update" | "patch" | "delete" | "list";

/** Who made a request, once its token was checked. */
export interface Caller {
  /** The token's accessor: the audit log's `user_id`; never the token. */
  accessor: string;
  /** The token's policies (`root` for the root token). */
  policies: string[];
  /** The token's display name. */
  displayName: string;
}

/**
 * What route handlers get from the server: the encrypted storage, the seal, and the two
 * checks every request goes through (authorisation, and mutations that commit with their
 * audit row).
 */
export interface ServerContext {
  /** The barrier: every read and write of the server goes through it. */
  readonly storage: StorageBackend;
  /** The adapter beneath (its audit store and health); never used for data. */
  readonly raw: AuditingBackend;
  readonly seal: SealManager;
  /** The Prometheus registry served at /v1/sys/metrics. */
  readonly metrics: Registry;

  /**
   * Checks the request's token and that its policies allow `capability` on `path` (a Vault
   * path without `/v1/`, e.g. `secret/data/app`). Throws `VaultError` 403 otherwise, 503
   * while sealed. Records the caller on the request for the audit row.
   */
  authorize(request: FastifyRequest, path: string, capability: Capability): Promise<Caller>;

  /**
   * Like {@link authorize}, but returns every capability the caller has on `path` (for
   * endpoints that decide between create and update, or check `sudo`).
   */
  capabilities(request: FastifyRequest, path: string): Promise<{ caller: Caller; capabilities: Set<Capability> }>;

  /**
   * Runs `fn` in one storage transaction whose commit includes this request's audit row
   * (success, `status`): a change never commits without its audit row, and an audit failure
   * rolls the change back. Serialization conflicts are retried by the backend (so `fn` may
   * run more than once: keep it free of side effects outside `tx`).
   */
  mutate<T>(request: FastifyRequest, status: number, fn: (tx: Transaction) => Promise<T>): Promise<T>;

  /** Sets what the request's audit row will say it did (Vault operation and path). */
  describe(request: FastifyRequest, operation: Operation, path: string): void;
}

/** An audit row being prepared for a request. */
export type PendingAudit = Omit<AuditEntry, "success" | "errorMessage"> & { written: boolean };
