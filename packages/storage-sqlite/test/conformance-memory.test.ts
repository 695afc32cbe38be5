import { describeStorageConformance } from "@egide/storage-conformance";
import { SqliteBackend } from "../src/index.js";

describeStorageConformance({
  name: "sqlite (:memory:)",
  create: async () => SqliteBackend.open({ path: ":memory:" }),
  capabilities: { getMany: true, changeFeed: true },
});
