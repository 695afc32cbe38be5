import { describeStorageConformance, ReferenceModel } from "../src/index.js";

// The suite run against its own model: every test must pass on an obviously correct backend,
// which keeps the suite honest before any real database runs it.
describeStorageConformance({ name: "reference model", create: async () => new ReferenceModel() });

// And with the optional capabilities it can offer, so their cases run against an obviously
// correct backend too.
describeStorageConformance({
  name: "reference model with getMany and a change feed",
  create: async () => new ReferenceModel({ getMany: true, changeFeed: true }),
  capabilities: { getMany: true, changeFeed: true },
});
