import { describeStorageConformance } from "../src/index.js";
import { BUGS, BuggyBackend, offersCapabilities } from "./buggy-backend.js";
import type { Bug } from "./buggy-backend.js";

// BUGS=a,b runs those mutants only; by default the correct baseline ("none") and every mutant.
const selected = (process.env.BUGS ? process.env.BUGS.split(",") : ["none", ...BUGS]) as Bug[];
for (const bug of selected) {
  // "undeclaredFeed" offers the change feed without declaring it: the declaration check must catch that.
  const capabilities = offersCapabilities(bug) ? { getMany: true, changeFeed: bug !== "undeclaredFeed" } : {};
  describeStorageConformance({ name: `bug ${bug}`, create: async () => new BuggyBackend(bug), differentialRuns: 20, capabilities });
}
