import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { PathTable } from "../engines/path-table.js";
import type { JsonObject } from "./kv-input.js";
import type { KvV1Engine, KvV1Response } from "./kv-v1-engine.js";

/**
 * The kinds of path of a KV version 1 mount: one. Every path below the mount names a secret
 * (Vault's `framework.MatchAllRegex("path")`), so `kv1/data/x` is the secret `data/x`, not a
 * KV version 2 endpoint.
 */
export type KvV1PathKind = "secret";

/** The path kind of `rest` (the path below a KV version 1 mount): always a secret. */
export function parseKvV1Route(rest: string): { kind: KvV1PathKind; path: string } {
  return { kind: "secret", path: rest };
}

/** What a KV v1 path handler is given: the engine of the mount, the request's parts, and how to answer. */
export interface KvV1Call {
  engine: KvV1Engine;
  /** The barrier, for reads. */
  storage: StorageBackend;
  /** The secret path below the mount ("" at the mount's root; ends with `/` for a folder). */
  path: string;
  body: JsonObject;
  /** Runs `fn` in a mutation that commits with the request's audit row, and answers its result. */
  mutate(status: number, fn: (tx: Transaction) => Promise<KvV1Response>): Promise<unknown>;
  /** Answers a read's result. */
  answer(result: KvV1Response): unknown;
}

const write = (call: KvV1Call) => call.mutate(204, (tx) => call.engine.write(tx, call.path, call.body));

/**
 * The paths of the KV version 1 engine (Vault's `kv` plugin, version 1, the "passthrough"
 * backend) and what each method does; anything else (PATCH) is 405. The capability each needs
 * is checked before, by the request pipeline, on the plain path `<mount>/<path>`: GET → read,
 * LIST → list (on the folder, with its trailing `/`), POST/PUT → create or update (by
 * existence of the secret), DELETE → delete.
 */
export const KV_V1_PATHS: PathTable<KvV1PathKind, KvV1Call> = {
  secret: {
    GET: async (call) => call.answer(await call.engine.read(call.storage, call.path)),
    LIST: async (call) => call.answer(await call.engine.list(call.storage, call.path)),
    POST: write,
    PUT: write,
    DELETE: (call) => call.mutate(204, (tx) => call.engine.delete(tx, call.path)),
  },
};
