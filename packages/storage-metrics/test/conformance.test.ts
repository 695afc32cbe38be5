import { describeStorageConformance } from "@egide/storage-conformance";
import { SqliteBackend } from "@egide/storage-sqlite";
import { Registry } from "prom-client";
import { withMetrics } from "../src/index.js";

// The decorator changes no behaviour: the whole shared suite passes through it. One registry
// for every backend the suite creates, as a server would have.
const registry = new Registry();

describeStorageConformance({
  name: "withMetrics over sqlite (memory)",
  create: async () => withMetrics(SqliteBackend.open({ path: ":memory:" }), { registry }),
});
