import { describeStorageConformance } from "@egide/storage-conformance";
import { DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { PostgresBackend } from "@egide/storage-postgres";
import type { PostgresOptions } from "@egide/storage-postgres";
import { afterAll } from "vitest";
import { VALUE_RECORD_OVERHEAD } from "../src/internal.js";
import { createTestDatabase, randomSuffix } from "@egide/test-postgres";
import { openSealedStack } from "./support/sealed-stack.js";

// The whole shared suite through the barrier over PostgreSQL: one database for this file, a
// fresh schema (initialised 1 of 1 and unsealed) for every test, dropped afterwards.

/** The barrier's default plaintext limit: the encrypted record still fits the backend's default. */
const BARRIER_MAX_VALUE_BYTES = DEFAULT_MAX_VALUE_BYTES - VALUE_RECORD_OVERHEAD;

const database = await createTestDatabase("barrier");
/** The schema of every barrier still to destroy. */
const schemas = new Map<StorageBackend, string>();
let counter = 0;

async function create(backendOptions: Partial<PostgresOptions> = {}): Promise<StorageBackend> {
  const schema = `s_${++counter}_${randomSuffix()}`;
  const raw = await PostgresBackend.open({ ...database.connection, schema, poolMin: 0, poolMax: 4, ...backendOptions });
  try {
    const stack = await openSealedStack({ raw });
    for (const share of stack.shares) share.fill(0);
    schemas.set(stack.barrier, schema);
    return stack.barrier;
  } catch (error) {
    await raw.close().catch(() => undefined);
    await database.dropSchema(schema).catch(() => undefined);
    throw error;
  }
}

/** Closes the barrier (and so its backend; it may be closed already) and drops its schema. */
async function destroy(backend: StorageBackend): Promise<void> {
  const schema = schemas.get(backend);
  schemas.delete(backend);
  await backend.close();
  if (schema !== undefined) await database.dropSchema(schema);
}

afterAll(async () => {
  for (const backend of [...schemas.keys()]) await destroy(backend).catch(() => undefined);
  await database.drop();
});

describeStorageConformance({
  name: "barrier over postgresql (direct)",
  create: () => create(),
  destroy,
  maxValueBytes: BARRIER_MAX_VALUE_BYTES,
  capabilities: { getMany: true, changeFeed: true },
});

// Listings normally start with a range read of 256 keys; a probe of one key sends every listing
// through the backend's recursive walk, so the barrier's hiding of `.egide/` (and its topping up
// of a page the reserved folder was in) is checked against that path too.
describeStorageConformance({
  name: "barrier over postgresql (direct, every listing by the recursive walk)",
  create: () => create({ listProbeKeys: 1 }),
  destroy,
  maxValueBytes: BARRIER_MAX_VALUE_BYTES,
  capabilities: { getMany: true, changeFeed: true },
});
