/**
 * The API fuzzed against a model (issue 15, point 5): fast-check generates sequences of KV
 * version 2 operations (writes with and without check-and-set, reads of the latest or a given
 * version, soft deletes, undelete, destroy, metadata writes with max_versions and cas_required,
 * metadata delete and read), token operations (children with policies, lookup, revoke,
 * revoke-self, revoke-orphan, renew, use after a parent's revocation) and policy operations
 * (write or delete a policy; a token holding it reads and writes, allowed or 403), sends them
 * over real HTTP to a real server, and compares every answer with a reference model of Vault's
 * semantics (support/api-model). Each run works below its own KV prefix and policy names, so
 * runs are independent on one server. TTLs are 24 h (never reached): expiry is tested in
 * e2e-token-lifecycle.test.ts with real clocks, not here.
 *
 * No sequence found a difference between the server and the model while this was written. The
 * shrunk counterexamples kept below are the ones fast-check found against deliberately broken
 * models (undelete not restoring version 1; revoke-orphan revoking the children too): the
 * shortest sequences that tell those semantics apart, replayed on every run.
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { afterAll, beforeAll, describe, it } from "vitest";
import { startTestServer, type TestServer } from "@egide/test-server";
import {
  type ApiCommand,
  type ApiModel,
  type ApiReal,
  apiCommandsArbitrary,
  createTokenCommand,
  deleteLatestCommand,
  lookupCommand,
  readCommand,
  revokeOrphanCommand,
  startRun,
  versionsCommand,
  writeCommand,
} from "./support/api-model/api-commands.js";

/** Runs per backend and commands per run: bounded so each backend's property takes about a minute at most. */
const NUM_RUNS = 100;
const MAX_COMMANDS = 40;

describe.each([["sqlite"], ["postgresql"]] as const)("the API against a model of Vault's semantics, on %s", (storage) => {
  let server: TestServer;
  let runs = 0;
  let commands = 0;

  beforeAll(async () => {
    server = await startTestServer({ storage, label: "api-model" });
  }, 30_000);

  afterAll(async () => {
    await server?.close();
  });

  const property = () =>
    fc.asyncProperty(apiCommandsArbitrary(MAX_COMMANDS), async (sequence) => {
      runs += 1;
      const prefix = `m${runs}${randomBytes(4).toString("hex")}`;
      const setup = await startRun(server.url, server.rootToken, prefix);
      // Counted as they run (fast-check skips a command whose precondition fails).
      const counted = [...sequence].map((command) => ({
        check: (model: ApiModel) => command.check(model),
        run: async (model: ApiModel, real: ApiReal) => {
          commands += 1;
          await command.run(model, real);
        },
        toString: () => command.toString(),
      }));
      await fc.asyncModelRun(() => setup, counted);
    });

  const replay = async (commands: ApiCommand[]) => {
    const setup = await startRun(server.url, server.rootToken, `r${randomBytes(6).toString("hex")}`);
    await fc.asyncModelRun(() => setup, commands);
  };

  // Shrunk by fast-check against a model whose undelete skipped version 1.
  it("regression: undelete restores the version a soft delete of the latest deleted", async () => {
    await replay([
      writeCommand("d/k2", { u: 0 }),
      deleteLatestCommand("d/k2"),
      versionsCommand("undelete", "d/k2", [1]),
      readCommand("d/k2", 0),
    ]);
  });

  // Shrunk by fast-check against a model whose revoke-orphan also revoked the children
  // (tokens 0 and 1 are created by startRun; token 2 is token 0's child).
  it("regression: a child outlives its parent's revoke-orphan", async () => {
    await replay([createTokenCommand(0, ["creator"]), revokeOrphanCommand(0), lookupCommand(2)]);
  });

  it("every answer matches the model (KV v2, tokens, policies)", async () => {
    await fc.assert(property(), { numRuns: NUM_RUNS, endOnFailure: false });
    // Printed for the report: how much was exercised.
    console.log(`[api-model ${storage}] ${runs} runs (with shrinking), ${commands} commands run`);
  }, 180_000);
});
