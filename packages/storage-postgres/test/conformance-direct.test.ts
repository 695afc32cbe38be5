import { describeStorageConformance } from "@egide/storage-conformance";
import { afterAll } from "vitest";
import type { PostgresBackend } from "../src/index.js";
import { createTestDatabase, freshSchemaFactory } from "./support/postgres-server.js";

// One database for this file (an ICU en-US default collation, so byte order must come from the
// key column's COLLATE "C"), and a fresh schema for every test. Named prepared statements stay
// on (prepareThreshold default), as in a direct production connection.
const database = await createTestDatabase("conformance_direct", { icuLocale: "en-US" });
const schemas = freshSchemaFactory(database.connection);
// Listings normally start with a plain range read of 256 keys, which answers every listing the
// suite makes; a probe of one key sends them through the recursive walk instead.
const walking = freshSchemaFactory(database.connection, { backend: { listProbeKeys: 1 } });
afterAll(async () => {
  await schemas.destroyAll();
  await walking.destroyAll();
  await database.drop();
});

describeStorageConformance({
  name: "postgresql (direct, named prepared statements)",
  create: () => schemas.create(),
  destroy: (backend) => schemas.destroy(backend as PostgresBackend),
  capabilities: { getMany: true, changeFeed: true },
});

describeStorageConformance({
  name: "postgresql (direct, every listing by the recursive walk)",
  create: () => walking.create(),
  destroy: (backend) => walking.destroy(backend as PostgresBackend),
  capabilities: { getMany: true, changeFeed: true },
});
