import { expect, it } from "vitest";
import type { ConformanceContext } from "./conformance-context.js";
import { formatDeclaration } from "./declared-capabilities.js";
import { inspectCapabilities } from "./offered-capabilities.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";

/**
 * The backend offers exactly the optional capabilities its test declares. The cases of a
 * capability are registered from the declaration (registration happens before any backend
 * exists), so this is what keeps an undeclared capability from going untested: its presence
 * fails here, with the declaration to write. A declared capability that is missing fails here
 * and in each of its cases.
 */
export function exerciseDeclaredCapabilities(context: ConformanceContext): void {
  it(
    "the backend offers exactly the optional capabilities declared in `capabilities`",
    async () => {
      const declared = context.options.capabilities;
      const offered = await inspectCapabilities(context.backend());
      const problems: string[] = [];
      const compare = (what: string, isDeclared: boolean, isOffered: boolean) => {
        if (isDeclared && !isOffered) problems.push(`${what} is declared but missing`);
        if (!isDeclared && isOffered) problems.push(`${what} is offered but not declared, so its cases did not run`);
      };
      compare("backend.getMany()", declared.backendGetMany, offered.backendGetMany);
      compare("getMany() in read-write transactions", declared.transactionGetMany, offered.transactionGetMany);
      compare("getMany() in read-only transactions", declared.transactionGetMany, offered.readOnlyTransactionGetMany);
      compare("backend.subscribeChanges()", declared.changeFeed, offered.changeFeed);
      if (problems.length > 0) {
        const matching = formatDeclaration({
          backendGetMany: offered.backendGetMany,
          // A backend whose read-only transactions differ from its read-write ones cannot be declared; say so above.
          transactionGetMany: offered.transactionGetMany && offered.readOnlyTransactionGetMany,
          changeFeed: offered.changeFeed,
        });
        expect.fail(
          `${problems.join("; ")}. Declared: capabilities: ${formatDeclaration(declared)}; ` +
            `the backend's offer is declared as capabilities: ${matching}`,
        );
      }
    },
    TEST_TIMEOUT_MS,
  );
}
