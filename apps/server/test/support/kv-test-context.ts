import Fastify from "fastify";
import type { FastifyInstance, FastifyRequest, InjectOptions, LightMyRequestResponse } from "fastify";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import type { TokenEntry } from "../../src/auth/token-store.js";
import { errorResponse } from "../../src/http/error-response.js";
import { addJsonBodyParser } from "../../src/http/json-body.js";
import { canonicalRewriteUrl, installRequestPipeline, type AclCheck, type RequestAuthorizer } from "../../src/http/request-pipeline.js";
import { MountTable, mountPath } from "../../src/mounts/mount-table.js";
import { registerLogicalRoutes, type LogicalRoutesContext } from "../../src/routes/logical-routes.js";
import { registerMountRoutes, type MountRoutesContext } from "../../src/routes/sys-mounts-routes.js";
import type { Capability, Caller, Operation } from "../../src/server-context.js";

export const ALL_CAPABILITIES: Capability[] = ["create", "read", "update", "patch", "delete", "list", "sudo"];

/**
 * A stand-in for the server context and the request pipeline's authorizer: one fixed token
 * (not root, so every request goes through the ACL check), capabilities from a policy
 * function, no audit; mutations are plain transactions.
 */
export interface KvTestContext extends LogicalRoutesContext, MountRoutesContext {
  /** The request pipeline's authorizer (give it to `installRequestPipeline`). */
  readonly authorizer: RequestAuthorizer;
  /**
   * What each answered request ended up described as in `request.egide` (the operation and
   * canonical path that were authorised, acted on and audited), in order.
   */
  readonly described: Array<{ operation: Operation; path: string }>;
  /** Every capability check the pipeline asked of the ACL (`allowOperation`), in order. */
  readonly checked: Array<{ path: string; capability?: Capability }>;
  /** Every `hasMountAccess` question (the mount path asked about), in order. */
  readonly mountAccess: string[];
  /** The status of every committed mutation, in order. */
  readonly mutations: number[];
  /** Replaces the policy: the capabilities granted on a path. */
  grant(policy: (path: string) => Capability[]): void;
}

/** The caller every request of the test context is made by: not root, so the ACL decides. */
export const TEST_CALLER: Caller = { accessor: "test-accessor", policies: ["test"], displayName: "test" };

/** The token entry of a test caller: an hour-long, non-renewable, parentless token. */
export function testTokenEntry(caller: Caller): TokenEntry {
  return {
    accessor: caller.accessor,
    policies: caller.policies,
    displayName: caller.displayName,
    meta: {},
    createdAt: 0,
    creationTtlMs: 3_600_000,
    expiresAt: null,
    maxExpiresAt: null,
    renewable: false,
    parentAccessor: null,
  };
}

const TEST_TOKEN_ENTRY: TokenEntry = testTokenEntry(TEST_CALLER);

/**
 * A test context over `storage`: the authorizer's `allowOperation` answers from the policy
 * (everything by default): allowed when the operation is granted and `deny` is not, `sudo`
 * when granted; `hasMountAccess` when anything but `deny` is granted on the mount path or on
 * the requested path below it; `mutate` runs `storage.transaction(fn)`.
 */
export function createKvTestContext(
  storage: StorageBackend,
  policy: (path: string) => Capability[] = () => ALL_CAPABILITIES,
): KvTestContext {
  let current = policy;
  const described: Array<{ operation: Operation; path: string }> = [];
  const checked: Array<{ path: string; capability?: Capability }> = [];
  const mountAccess: string[] = [];
  const mutations: number[] = [];
  const grantsSomething = (path: string) => {
    const granted = current(path);
    return !granted.includes("deny") && granted.length > 0;
  };
  const authorizer: RequestAuthorizer = {
    sealed: false,
    // Tokens here have no use limit.
    spendUse: async (_token, entry) => entry,
    async authenticate() {
      return { token: "test-token", entry: TEST_TOKEN_ENTRY, caller: TEST_CALLER };
    },
    async allowOperation(_caller: Caller, check: AclCheck) {
      checked.push({ path: check.path, capability: check.operation });
      const granted = current(check.path);
      return { allowed: granted.includes(check.operation) && !granted.includes("deny"), sudo: granted.includes("sudo") };
    },
  };
  return {
    storage,
    authorizer,
    described,
    checked,
    mountAccess,
    mutations,
    grant(next) {
      current = next;
    },
    async hasMountAccess(request: FastifyRequest, mount: string): Promise<boolean> {
      mountAccess.push(mount);
      if (request.egide?.session === undefined) return false;
      // The policy is a function, so "below the mount" is what can be asked of it: the mount
      // path itself (with and without its slash) and the requested path and its parents.
      const base = mountPath(mount);
      const candidates = new Set([base, base.slice(0, -1)]);
      const requested = request.egide.path.startsWith("sys/internal/ui/mounts/")
        ? request.egide.path.slice("sys/internal/ui/mounts/".length)
        : "";
      if (requested.startsWith(base)) {
        const parts = requested.split("/");
        for (let end = parts.length; end > 0; end--) {
          const path = parts.slice(0, end).join("/");
          if (path.length >= base.length - 1) candidates.add(path);
        }
      }
      return [...candidates].some(grantsSomething);
    },
    async mutate<T>(_request: FastifyRequest, status: number, fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const result = await storage.transaction(fn);
      mutations.push(status);
      return result;
    },
  };
}

/** A fresh in-memory SQLite database. */
export function memoryStorage(): SqliteBackend {
  return SqliteBackend.open({ path: ":memory:" });
}

/**
 * A Fastify app with the mount and logical routes over `ctx`, behind the real request pipeline
 * (canonical paths through `rewriteUrl`, description, authentication and ACL checks through
 * `ctx.authorizer`), and the core's conventions reproduced: every body is JSON whatever its
 * Content-Type, Vault's error shapes, 404 `{"errors": []}` for unknown routes.
 */
export async function buildKvTestApp(ctx: KvTestContext, mounts: MountTable): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    rewriteUrl: canonicalRewriteUrl,
    frameworkErrors: (error, _request, reply) => {
      void (reply as unknown as { code(status: number): { send(body: unknown): void } }).code(400).send({ errors: [error.message] });
    },
  });
  installRequestPipeline(app, ctx.authorizer, { unaudited: new Set() });
  // What the audit row would record: the request as the pipeline described it.
  app.addHook("onSend", async (request, _reply, payload) => {
    const state = request.egide;
    if (state) ctx.described.push({ operation: state.operation, path: state.path });
    return payload;
  });
  app.removeAllContentTypeParsers();
  addJsonBodyParser(app);
  app.setErrorHandler(async (error, _request, reply) => {
    const { status, errors, internal } = errorResponse(error);
    return reply.code(status).send(internal ? { errors, detail: String(error) } : { errors });
  });
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ errors: [] }));
  // Stand-ins for routes of the core, to check that the catch-all does not shadow them.
  app.get("/v1/sys/health", { config: { vault: { template: "sys/health", access: "public" } } }, async () => ({ initialized: true }));
  app.post("/v1/auth/token/create", { config: { vault: { template: "auth/token/create", access: "token" } } }, async () => ({
    auth: { client_token: "x" },
  }));
  registerMountRoutes(app, ctx, mounts);
  registerLogicalRoutes(app, ctx, mounts);
  await app.ready();
  return app;
}

/** A mount table over `storage` with `secret/` mounted, and a context and app around them. */
export async function kvFixture(storage: StorageBackend = memoryStorage()): Promise<{
  storage: StorageBackend;
  ctx: KvTestContext;
  mounts: MountTable;
  app: FastifyInstance;
  /** Injects a request; a payload is sent as JSON. */
  call(method: InjectOptions["method"], url: string, payload?: unknown, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}> {
  const mounts = new MountTable(storage);
  await mounts.ensureDefault();
  const ctx = createKvTestContext(storage);
  const app = await buildKvTestApp(ctx, mounts);
  return {
    storage,
    ctx,
    mounts,
    app,
    call: (method, url, payload, headers = {}) =>
      app.inject({
        method,
        url,
        headers: payload === undefined ? headers : { "content-type": "application/json", ...headers },
        ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
      }),
    async close() {
      await app.close();
      await storage.close();
    },
  };
}
