import type { SealManager } from "@egide/crypto-envelope";
import { isAuditingTransaction, StorageError, StorageErrorCode } from "@egide/storage-core";
import type { AuditingBackend, StorageBackend, Transaction } from "@egide/storage-core";
import type { FastifyRequest } from "fastify";
import type { Registry } from "prom-client";
import { auditEntry } from "./audit/audit-entry.js";
import { requestToken } from "./auth/request-token.js";
import type { TokenEntry, TokenStore } from "./auth/token-store.js";
import { permissionDenied, sealedError } from "./http/vault-error.js";
import type { PolicyStore } from "./policy/policy-store.js";
import type { Capability, Caller, Operation, ServerContext } from "./server-context.js";

const ALL_CAPABILITIES: ReadonlySet<Capability> = new Set<Capability>(["create", "read", "update", "patch", "delete", "list", "sudo"]);

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
 * The server's {@link ServerContext}: authorisation (token → policies → ACL, deny by default)
 * and mutations that commit with their audit row.
 */
export class EgideContext implements ServerContext {
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

  async authorize(request: FastifyRequest, path: string, capability: Capability): Promise<Caller> {
    const { caller } = await this.authenticate(request);
    if (caller.policies.includes("root")) return caller;
    const acl = await this.policies.acl(caller.policies);
    if (!acl.allows(path, capability)) throw permissionDenied();
    return caller;
  }

  async capabilities(request: FastifyRequest, path: string): Promise<{ caller: Caller; capabilities: Set<Capability> }> {
    const { caller } = await this.authenticate(request);
    if (caller.policies.includes("root")) return { caller, capabilities: new Set(ALL_CAPABILITIES) };
    const acl = await this.policies.acl(caller.policies);
    return { caller, capabilities: new Set([...ALL_CAPABILITIES].filter((capability) => acl.allows(path, capability))) };
  }

  /** The caller and token entry of the request's token; 503 while sealed, 403 without a live token. */
  async authenticate(request: FastifyRequest): Promise<{ caller: Caller; entry: TokenEntry; token: string }> {
    if (this.seal.sealed) throw sealedError();
    const token = requestToken(request);
    if (token === undefined) throw permissionDenied();
    const entry = await this.tokens.lookup(token);
    if (entry === null) throw permissionDenied();
    const caller: Caller = { accessor: entry.accessor, policies: entry.policies, displayName: entry.displayName };
    request.egide.caller = caller;
    return { caller, entry, token };
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

  describe(request: FastifyRequest, operation: Operation, path: string): void {
    request.egide.operation = operation;
    request.egide.path = path;
  }
}
