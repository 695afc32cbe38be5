import type { SealManager } from "@egide/crypto-envelope";
import { isAuditingTransaction, StorageError, StorageErrorCode } from "@egide/storage-core";
import type { AuditingBackend, StorageBackend, Transaction } from "@egide/storage-core";
import type { FastifyRequest } from "fastify";
import type { Registry } from "prom-client";
import { auditEntry } from "./audit/audit-entry.js";
import { requestToken } from "./auth/request-token.js";
import type { TokenEntry, TokenStore } from "./auth/token-store.js";
import type { AclCheck, RequestAuthorizer } from "./http/request-pipeline.js";
import { sealedError } from "./http/vault-error.js";
import type { PolicyStore } from "./policy/policy-store.js";
import type { Caller, ServerContext } from "./server-context.js";

/** The pieces {@link EgideContext} is built from. */
export interface EgideContextParts {
  storage: StorageBackend;
  raw: AuditingBackend;
  seal: SealManager;
  metrics: Registry;
  tokens: TokenStore;
  policies: PolicyStore;
}

/**
 * The server's {@link ServerContext} and the request pipeline's {@link RequestAuthorizer}:
 * tokens, policies and the ACL (deny by default), and mutations that commit with their audit row.
 */
export class EgideContext implements ServerContext, RequestAuthorizer {
  readonly storage: StorageBackend;
  readonly raw: AuditingBackend;
  readonly seal: SealManager;
  readonly metrics: Registry;
  readonly tokens: TokenStore;
  readonly policies: PolicyStore;

  constructor(parts: EgideContextParts) {
    this.storage = parts.storage;
    this.raw = parts.raw;
    this.seal = parts.seal;
    this.metrics = parts.metrics;
    this.tokens = parts.tokens;
    this.policies = parts.policies;
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
