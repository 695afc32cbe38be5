import Fastify from "fastify";
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { StorageError } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { VaultError, permissionDenied } from "../../src/http/vault-error.js";
import { MountTable } from "../../src/mounts/mount-table.js";
import { registerLogicalRoutes, type LogicalRoutesContext } from "../../src/routes/logical-routes.js";
import { registerMountRoutes, type MountRoutesContext } from "../../src/routes/sys-mounts-routes.js";
import type { Capability, Caller, Operation } from "../../src/server-context.js";

export const ALL_CAPABILITIES: Capability[] = ["create", "read", "update", "patch", "delete", "list", "sudo"];

/** A stand-in for the server context: no tokens, no audit; mutations are plain transactions. */
export interface KvTestContext extends LogicalRoutesContext, MountRoutesContext {
  /** Every `describe` call, in order. */
  readonly described: Array<{ operation: Operation; path: string }>;
  /** Every capability check (`authorize`, and the capability finally required after `capabilities`). */
  readonly checked: Array<{ path: string; capability?: Capability }>;
  /** The status of every committed mutation, in order. */
  readonly mutations: number[];
  /** Replaces the policy: the capabilities granted on a path. */
  grant(policy: (path: string) => Capability[]): void;
}

const CALLER: Caller = { accessor: "test-accessor", policies: ["root"], displayName: "test" };

/**
 * A test context over `storage`: `authorize` and `capabilities` follow the policy (everything
 * by default), `mutate` runs `storage.transaction(fn)`, `describe` is recorded.
 */
export function createKvTestContext(storage: StorageBackend, policy: (path: string) => Capability[] = () => ALL_CAPABILITIES): KvTestContext {
  let current = policy;
  const described: Array<{ operation: Operation; path: string }> = [];
  const checked: Array<{ path: string; capability?: Capability }> = [];
  const mutations: number[] = [];
  return {
    storage,
    described,
    checked,
    mutations,
    grant(next) {
      current = next;
    },
    async authorize(_request: FastifyRequest, path: string, capability: Capability): Promise<Caller> {
      checked.push({ path, capability });
      const granted = current(path);
      if (granted.includes("deny") || !granted.includes(capability)) throw permissionDenied();
      return CALLER;
    },
    async capabilities(_request: FastifyRequest, path: string) {
      checked.push({ path });
      return { caller: CALLER, capabilities: new Set(current(path)) };
    },
    async mutate<T>(_request: FastifyRequest, status: number, fn: (tx: Transaction) => Promise<T>): Promise<T> {
      const result = await storage.transaction(fn);
      mutations.push(status);
      return result;
    },
    describe(_request: FastifyRequest, operation: Operation, path: string): void {
      described.push({ operation, path });
    },
  };
}

/** A fresh in-memory SQLite database. */
export function memoryStorage(): SqliteBackend {
  return SqliteBackend.open({ path: ":memory:" });
}

/**
 * A Fastify app with the mount and logical routes over `ctx`, and the core's conventions
 * reproduced: every body is JSON whatever its Content-Type, Vault's error shapes, 404
 * `{"errors": []}` for unknown routes.
 */
export async function buildKvTestApp(ctx: KvTestContext, mounts: MountTable): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request: FastifyRequest, body: Buffer, done: (error: Error | null, value?: unknown) => void) => {
    if (body.length === 0) return done(null, undefined);
    try {
      done(null, JSON.parse(body.toString("utf8")));
    } catch {
      done(new VaultError(400, "failed to parse JSON input"));
    }
  });
  app.setErrorHandler(async (error, _request, reply) => {
    if (error instanceof VaultError) return reply.code(error.status).send({ errors: error.errors });
    if (StorageError.isInstance(error) && error.code === "VALUE_TOO_LARGE") return reply.code(413).send({ errors: ["too large"] });
    const status = (error as { statusCode?: number }).statusCode;
    if (typeof status === "number" && status >= 400 && status < 500) return reply.code(status).send({ errors: [String((error as Error).message)] });
    return reply.code(500).send({ errors: ["internal error"], detail: String(error) });
  });
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ errors: [] }));
  // Stand-ins for routes of the core, to check that the catch-all does not shadow them.
  app.get("/v1/sys/health", async () => ({ initialized: true }));
  app.post("/v1/auth/token/create", async () => ({ auth: { client_token: "x" } }));
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
    async close() {
      await app.close();
      await storage.close();
    },
  };
}
