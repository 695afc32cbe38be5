import { describeAuditStoreConformance, describeStorageConformance } from "@egide/storage-conformance";
import { type __Type__Backend, backendDefinition } from "../src/index.js";

/**
 * A fresh, empty backend, opened as the server opens it: the definition's `parseConfig`, then
 * `create`. Both suites call it once per test.
 */
async function openFresh(): Promise<__Type__Backend> {
  // TODO: point it at a real database started by the tests on a loopback address, with a
  // namespace of its own per call (a new database, schema or key prefix), removed in `destroy`.
  // Never a mock; under CI=true a missing database must fail the run, never skip it.
  return backendDefinition.create(backendDefinition.parseConfig({}));
}

describeStorageConformance({
  name: "__TYPE__",
  create: openFresh,
  // Exactly the optional capabilities the backend offers: the suite fails when a capability is
  // offered but not declared here (its cases would not run), or declared but missing.
  capabilities: { getMany: false, changeFeed: false },
});

describeAuditStoreConformance({ name: "__TYPE__", create: openFresh });
