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
 * What route handlers get from the server: the encrypted storage, the seal, and mutations that
 * commit with their audit row. Authorisation is not here: the request pipeline has done it
 * before a handler runs (`request.egide` holds the caller and the canonical path).
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
   * Runs `fn` in one storage transaction whose commit includes this request's audit row
   * (success, `status`): a change never commits without its audit row, and an audit failure
   * rolls the change back. Serialization conflicts are retried by the backend (so `fn` may
   * run more than once: keep it free of side effects outside `tx`).
   */
  mutate<T>(request: FastifyRequest, status: number, fn: (tx: Transaction) => Promise<T>): Promise<T>;

}

/** An audit row being prepared for a request. */
export type PendingAudit = Omit<AuditEntry, "success" | "errorMessage"> & { written: boolean };
