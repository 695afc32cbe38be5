import { describeStorageConformance, ReferenceModel } from "../src/index.js";

// The suite run against its own model: every test must pass on an obviously correct backend,
// which keeps the suite honest before any real database runs it.
describeStorageConformance({ name: "reference model", create: async () => new ReferenceModel() });
