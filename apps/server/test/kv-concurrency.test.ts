import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { FastifyRequest } from "fastify";
import { SqliteBackend } from "@egide/storage-sqlite";
import { VaultError } from "../src/http/vault-error.js";
import { CAS_MISMATCH } from "../src/kv/kv-v2-engine.js";
import { KvV2Engine } from "../src/kv/kv-v2-engine.js";
import type { KvResponse } from "../src/kv/kv-response.js";
import { createKvTestContext, type KvTestContext } from "./support/kv-test-context.js";

const PREFIX = "logical/6a1f0c52-1111-4000-8000-00000000cafe/";
const WRITERS = 20;
const request = {} as FastifyRequest;

let dir: string;
let backends: SqliteBackend[];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "egide-kv-cas-"));
  backends = [];
});

afterEach(async () => {
  for (const backend of backends) await backend.close();
  rmSync(dir, { recursive: true, force: true });
});

function open(): SqliteBackend {
  const backend = SqliteBackend.open({ path: join(dir, "egide.db") });
  backends.push(backend);
  return backend;
}

/** `writers` concurrent check-and-set writes of `path` with the same `cas`, through the contexts in turn. */
async function race(contexts: KvTestContext[], engine: KvV2Engine, path: string, cas: number, writers = WRITERS) {
  const outcomes = await Promise.allSettled(
    Array.from({ length: writers }, (_, i) => {
      const ctx = contexts[i % contexts.length] as KvTestContext;
      return ctx.mutate(request, 200, (tx) => engine.write(tx, path, { writer: i, cas }, { cas }));
    }),
  );
  const won = outcomes.filter((o): o is PromiseFulfilledResult<KvResponse> => o.status === "fulfilled");
  const lost = outcomes.filter((o): o is PromiseRejectedResult => o.status === "rejected");
  return { won, lost };
}

function versionOf(response: KvResponse): number {
  return (response as { data: { version: number } }).data.version;
}

describe("check-and-set under concurrency (SQLite file)", () => {
  it(`${WRITERS} concurrent writers with the same cas: exactly one wins per version`, async () => {
    const storage = open();
    const ctx = createKvTestContext(storage);
    const engine = new KvV2Engine(PREFIX);
    for (let version = 0; version < 5; version++) {
      const { won, lost } = await race([ctx], engine, "contended", version);
      expect(won).toHaveLength(1);
      expect(versionOf((won[0] as PromiseFulfilledResult<KvResponse>).value)).toBe(version + 1);
      expect(lost).toHaveLength(WRITERS - 1);
      for (const failure of lost) {
        expect(failure.reason).toBeInstanceOf(VaultError);
        expect((failure.reason as VaultError).status).toBe(400);
        expect((failure.reason as VaultError).errors).toEqual([CAS_MISMATCH]);
      }
    }
    const meta = (await engine.readMetadata(storage, "contended")) as {
      data: { current_version: number; versions: Record<string, unknown> };
    };
    expect(meta.data.current_version).toBe(5);
    // Only the winners committed (one mutation each).
    expect(ctx.mutations).toHaveLength(5);
  });

  it("writers that retry on a check-and-set mismatch each land exactly one version, none lost or doubled", async () => {
    const storage = open();
    const ctx = createKvTestContext(storage);
    const engine = new KvV2Engine(PREFIX);
    await ctx.mutate(request, 204, (tx) => engine.writeMetadata(tx, "counter", { max_versions: 100 }));
    const writer = async (id: number): Promise<number> => {
      for (let attempt = 0; attempt < 200; attempt++) {
        const meta = (await engine.readMetadata(storage, "counter")) as { data: { current_version: number } };
        try {
          const response = await ctx.mutate(request, 200, (tx) => engine.write(tx, "counter", { id }, { cas: meta.data.current_version }));
          return versionOf(response);
        } catch (error) {
          if (!(error instanceof VaultError) || error.status !== 400 || error.errors[0] !== CAS_MISMATCH) throw error;
        }
      }
      throw new Error("writer starved");
    };
    const versions = await Promise.all(Array.from({ length: WRITERS }, (_, id) => writer(id)));
    expect([...versions].sort((a, b) => a - b)).toEqual(Array.from({ length: WRITERS }, (_, i) => i + 1));
    const ids = new Set<number>();
    for (let version = 1; version <= WRITERS; version++) {
      const read = (await engine.readData(storage, "counter", version)) as { data: { data: { id: number } } };
      ids.add(read.data.data.id);
    }
    expect(ids.size).toBe(WRITERS);
  });
});
