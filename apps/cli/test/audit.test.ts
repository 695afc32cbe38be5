import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { api, startCliTestServer } from "@egide/test-server";
import type { CliTestServer, JsonBody } from "@egide/test-server";

// `egide audit list` and its filters, against rows the test itself causes.

let server: CliTestServer;
let requestId: string;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer();
  await api(server, "POST", "secret/data/audited/one", { data: { a: "1" } });
  await api(server, "GET", "secret/data/audited/one");
  requestId = (await api(server, "GET", "secret/data/audited/one")).body.request_id;
  await api(server, "GET", "secret/data/audited/one", undefined, "egs.wrong");
});
afterAll(() => server?.close());

/** The entries of `audit list --format json` with `args`. */
async function entries(...args: string[]): Promise<Array<Record<string, JsonBody>>> {
  const run = await egide(["audit", "list", "--format", "json", ...args], { env: server.env });
  expect(run.stderr).toBe("");
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout).data.entries;
}

describe("egide audit list", () => {
  test("a table of rows with their operation, path, outcome and request id", async () => {
    const run = await egide(["audit", "list", "--path", "secret/data/audited/"], { env: server.env });
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^ID\s+Time\s+Operation\s+Path\s+Status\s+Request ID\s+Error$/);
    expect(lines.slice(2)).toHaveLength(4);
    expect(lines[2]).toMatch(/^\d+\s+\d{4}-\d\d-\d\dT\S+\s+create\s+secret\/data\/audited\/one\s+ok 200\s+[0-9a-f-]{36}$/);
    expect(lines[5]).toMatch(/\sread\s+secret\/data\/audited\/one\s+failed 403\s+[0-9a-f-]{36}\s+permission denied$/);
  });

  test("--path, --request-id, --failed, --operation and --limit filter on the server", async () => {
    expect(await entries("--path", "secret/data/audited/")).toHaveLength(4);
    const one = await entries("--request-id", requestId);
    expect(one).toHaveLength(1);
    expect(one[0]).toMatchObject({ request_id: requestId, path: "secret/data/audited/one", success: true });
    const failed = await entries("--failed", "--path", "secret/");
    expect(failed.map((entry) => entry.metadata.status)).toEqual([403]);
    expect((await entries("--operation", "create", "--path", "secret/")).map((entry) => entry.operation)).toEqual(["create"]);
    expect(await entries("--limit", "2")).toHaveLength(2);
  });

  test("--since and --until take durations back from now or RFC 3339 times", async () => {
    const all = await entries("--path", "secret/data/audited/");
    expect(await entries("--since", "1h", "--path", "secret/data/audited/")).toHaveLength(all.length);
    expect(await entries("--until", "1h", "--path", "secret/data/audited/")).toHaveLength(0);
    const middle = all[2]?.timestamp as string;
    const since = await entries("--since", middle, "--path", "secret/data/audited/");
    expect(since.every((entry) => entry.timestamp >= middle)).toBe(true);
    expect(since.length).toBeGreaterThanOrEqual(2);
    expect(since.length).toBeLessThan(all.length);
    expect(await entries("--since", "2000-01-01", "--until", "2000-01-02")).toHaveLength(0);
    // -since=… in Vault's style.
    const run = await egide(["audit", "list", "-since=1h", "-format=json", "-limit=1"], { env: server.env });
    expect(JSON.parse(run.stdout).data.entries).toHaveLength(1);
  });

  test("bad filters are usage errors; a token without sudo on sys/audit-log is refused", async () => {
    const cases = [
      ["--since", "yesterday"],
      ["--until", "2025-13-45T00:00:00Z"],
      ["--limit", "0"],
      ["--request-id", "abc"],
      ["--after-id", "-3"],
    ];
    const runs = await Promise.all(cases.map((args) => egide(["audit", "list", ...args], { env: server.env })));
    for (const [index, args] of cases.entries()) {
      const run = runs[index] as Awaited<ReturnType<typeof egide>>;
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr, args.join(" ")).toMatch(/^egide: option '--[a-z-]+ <[a-z]+>' argument '.*' is invalid\. /);
    }
    const user = (await api(server, "POST", "auth/token/create", { policies: ["default"] })).body.auth.client_token as string;
    const denied = await egide(["audit", "list"], { env: { ...server.env, EGIDE_TOKEN: user } });
    expect(denied).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
  });
});
