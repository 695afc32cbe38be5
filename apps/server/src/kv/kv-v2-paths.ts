import type { StorageBackend, Transaction } from "@egide/storage-core";
import type { PathTable } from "../engines/path-table.js";
import { field, type JsonObject } from "./kv-input.js";
import type { KvRoute } from "./kv-paths.js";
import type { KvResponse } from "./kv-response.js";
import type { KvV2Engine } from "./kv-v2-engine.js";

/** What a KV v2 path handler is given: the engine of the mount, the request's parts, and how to answer. */
export interface KvCall {
  engine: KvV2Engine;
  /** The barrier, for reads. */
  storage: StorageBackend;
  /** The secret path below the engine's sub-path (`data/<path>`), "" for `config`. */
  path: string;
  body: JsonObject;
  query: Record<string, unknown>;
  /** Runs `fn` in a mutation that commits with the request's audit row, and answers `answer ?? its result`. */
  mutate(status: number, fn: (tx: Transaction) => Promise<KvResponse>, answer?: KvResponse): Promise<unknown>;
  /** Answers a read's result. */
  answer(result: KvResponse): unknown;
}

/** Metadata writes: 200 with a warning body when the answer has warnings, 204 otherwise (decided before the mutation, so the audit row agrees). */
async function writeMetadata(call: KvCall, patch: boolean): Promise<unknown> {
  const warnings = await call.engine.metadataWarnings(call.storage, call.body);
  const answer: KvResponse = warnings.length > 0 ? { status: 200, data: null, warnings } : { status: 204 };
  return call.mutate(
    answer.status,
    (tx) => (patch ? call.engine.patchMetadata(tx, call.path, call.body) : call.engine.writeMetadata(tx, call.path, call.body)),
    answer,
  );
}

const writeData = (call: KvCall) =>
  call.mutate(200, (tx) => call.engine.write(tx, call.path, field(call.body, "data"), field(call.body, "options")));
const putMetadata = (call: KvCall) => writeMetadata(call, false);
const writeConfig = (call: KvCall) => call.mutate(204, (tx) => call.engine.writeConfig(tx, call.body));
const deleteVersions = (call: KvCall) => call.mutate(204, (tx) => call.engine.deleteVersions(tx, call.path, field(call.body, "versions")));
const undeleteVersions = (call: KvCall) =>
  call.mutate(204, (tx) => call.engine.undeleteVersions(tx, call.path, field(call.body, "versions")));
const destroyVersions = (call: KvCall) =>
  call.mutate(204, (tx) => call.engine.destroyVersions(tx, call.path, field(call.body, "versions")));

/**
 * The paths of the KV version 2 engine (Vault's `kv` plugin, version 2) and what each method
 * does on them; anything else is 405. The capability each needs is checked before, by the
 * request pipeline: GET → read, LIST → list, POST/PUT on `data/` and `metadata/` → create or
 * update (by existence), elsewhere → update, PATCH → patch, DELETE → delete.
 */
export const KV_V2_PATHS: PathTable<KvRoute["kind"], KvCall> = {
  data: {
    GET: async (call) => call.answer(await call.engine.readData(call.storage, call.path, call.query.version)),
    POST: writeData,
    PUT: writeData,
    PATCH: (call) => call.mutate(200, (tx) => call.engine.patch(tx, call.path, field(call.body, "data"), field(call.body, "options"))),
    DELETE: (call) => call.mutate(204, (tx) => call.engine.deleteLatest(tx, call.path)),
  },
  metadata: {
    GET: async (call) => call.answer(await call.engine.readMetadata(call.storage, call.path)),
    LIST: async (call) => call.answer(await call.engine.listMetadata(call.storage, call.path)),
    POST: putMetadata,
    PUT: putMetadata,
    PATCH: (call) => writeMetadata(call, true),
    DELETE: (call) => call.mutate(204, (tx) => call.engine.deleteMetadata(tx, call.path)),
  },
  config: {
    GET: async (call) => call.answer(await call.engine.readConfig(call.storage)),
    POST: writeConfig,
    PUT: writeConfig,
  },
  delete: { POST: deleteVersions, PUT: deleteVersions },
  undelete: { POST: undeleteVersions, PUT: undeleteVersions },
  destroy: { POST: destroyVersions, PUT: destroyVersions },
  subkeys: {
    GET: async (call) => call.answer(await call.engine.readSubkeys(call.storage, call.path, call.query.version, call.query.depth)),
  },
};
