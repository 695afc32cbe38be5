import type { SealManager } from "@egide/crypto-envelope";
import { isAuditingTransaction, StorageError, StorageErrorCode } from "@egide/storage-core";
import type { AuditingBackend, StorageBackend, Transaction } from "@egide/storage-core";
import type { FastifyRequest } from "fastify";
import type { Registry } from "prom-client";
import { auditEntry } from "./audit/audit-entry.js";
import type { CacheCoherence } from "./cache/cache-coherence.js";
import { requestToken } from "./auth/request-token.js";
import type { TokenEntry, TokenStore } from "./auth/token-store.js";
import type { AclCheck, RequestAuthorizer } from "./http/request-pipeline.js";
import { sealedError } from "./http/vault-error.js";
import type { PolicyStore } from "./policy/policy-store.js";
import type { Caller } from "./server-context.js";

/** The pieces {@link EgideContext} is built from. */
export interface EgideContextParts {
  storage: StorageBackend;
  adapter: AuditingBackend;
  seal: SealManager;
  metrics: Registry;
  tokens: TokenStore;
  policies: PolicyStore;
  /** The storage change feed's view, for caches of decoded records (absent: they cache by time). */
  coherence?: CacheCoherence | undefined;
}

/**
 * What the request pipeline and the route handlers get from the server (the pipeline's
 * {@link RequestAuthorizer}): the encrypted storage, the seal, tokens, policies and the ACL
 * (deny by default), and mutations that commit with their audit row. Route handlers run after
 * the pipeline has authorised the request (`request.egide` holds the caller and the canonical
 * path); routes that need only part of it take a `Pick` of it.
 */
export class EgideContext implements RequestAuthorizer {
  /** The barrier: every read and write of the server goes through it. */
  readonly storage: StorageBackend;
  /** The metered adapter beneath the barrier: its audit store and health; never used for data. */
  readonly adapter: AuditingBackend;
  readonly seal: SealManager;
  /** The Prometheus registry served at /v1/sys/metrics. */
  readonly metrics: Registry;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;
  /** The storage change feed's view, for caches of decoded records (the auth mount table, …). */
  readonly coherence: CacheCoherence | undefined;

  constructor(parts: EgideContextParts) {
    this.coherence = parts.coherence;
    this.storage = parts.storage;
    this.adapter = parts.adapter;
    this.seal = parts.seal;
    this.metrics = parts.metrics;
    this.tokens = parts.tokens;
    this.policies = parts.policies;
  }

  /** @deprecated Renamed {@link EgideContext.adapter}. */
  get raw(): AuditingBackend {
    return this.adapter;
  }

  get sealed(): boolean {
    return this.seal.sealed;
  }

  /** The live token of the request, its entry and caller; null without one. */
  async authenticate(request: FastifyRequest): Promise<{ token: string; entry: TokenEntry; caller: Caller } | null> {
    const token = requestToken(request);
    if (token === undefined) return null;
    const entry = await this.tokens.lookup(token);
    if (entry === null) return null;
    return { token, entry, caller: { accessor: entry.accessor, policies: entry.policies, displayName: entry.displayName } };
  }

  /** Spends one use of a use-limited token once its request is authorised (Vault's UseToken, atomic). */
  async spendUse(token: string, entry: TokenEntry): Promise<TokenEntry | null> {
    return (entry.numUses ?? 0) > 0 ? this.tokens.use(token) : entry;
  }

  async allowOperation(caller: Caller, check: AclCheck, capabilityCheckOnly: boolean): Promise<{ allowed: boolean; sudo: boolean }> {
    const acl = await this.policies.acl(caller.policies);
    return acl.allowOperation(check, capabilityCheckOnly);
  }

  /** Whether the request's token may reach anything under `mountPath` (Vault's hasMountAccess). */
  async hasMountAccess(request: FastifyRequest, mountPath: string): Promise<boolean> {
    const session = request.egide.session;
    if (session === undefined) return false;
    if (session.isRoot) return true;
    return (await this.policies.acl(session.caller.policies)).hasMountAccess(mountPath);
  }

  /**
   * Runs `fn` in one storage transaction whose commit includes this request's audit row
   * (success, `status`): a change never commits without its audit row, and an audit failure
   * rolls the change back. Serialization conflicts are retried by the backend (so `fn` may
   * run more than once: keep it free of side effects outside `tx`).
   */
  async mutate<T>(request: FastifyRequest, status: number, fn: (tx: Transaction) => Promise<T>): Promise<T> {
    if (this.seal.sealed) throw sealedError();
    const result = await this.storage.transaction(async (tx) => {
      const value = await fn(tx);
      if (!isAuditingTransaction(tx)) {
        throw new StorageError(StorageErrorCode.INTERNAL, "the storage backend cannot write audit rows inside a transaction");
      }
      if (!request.egide.skipAudit) await tx.appendAudit(auditEntry(request, true, status, null));
      return value;
    });
    request.egide.audited = true;
    return result;
  }
}

/**
 * What route handlers got from the server before {@link EgideContext} was the one context
 * type: kept, as a `Pick` of it, so code written against it keeps compiling.
 */
export type ServerContext = Pick<EgideContext, "storage" | "adapter" | "raw" | "seal" | "metrics" | "mutate">;
