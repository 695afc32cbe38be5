import { ReferenceModel, describeStorageConformance, offeredCapabilities } from "@egide/storage-conformance";
import { SqliteBackend } from "@egide/storage-sqlite";
import { Registry } from "prom-client";
import { withMetrics } from "../src/index.js";

// The decorator changes no behaviour: the whole shared suite passes through it. One registry
// for every backend the suite creates, as a server would have.
const registry = new Registry();

// A decorator offers what the backend it wraps offers (decorator-capabilities.test.ts checks
// that), so this run declares SQLite's own offer, whatever it is: SQLite's package declares its
// capabilities literally, and this run takes up the getMany and change feed cases as SQLite gains them.
const probe = SqliteBackend.open({ path: ":memory:" });
const sqliteCapabilities = await offeredCapabilities(probe);
await probe.close();

describeStorageConformance({
  name: "withMetrics over sqlite (memory)",
  create: async () => withMetrics(SqliteBackend.open({ path: ":memory:" }), { registry }),
  capabilities: sqliteCapabilities,
});

// The getMany and change feed cases through the decorator whatever SQLite offers today: over
// the conformance suite's reference model, which offers both.
describeStorageConformance({
  name: "withMetrics over the reference model with getMany and a change feed",
  create: async () => withMetrics(new ReferenceModel({ getMany: true, changeFeed: true }), { registry, backendLabel: "reference" }),
  capabilities: { getMany: true, changeFeed: true },
});
