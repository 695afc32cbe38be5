import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { EGIDE_BIN, assertBuildIsFresh, cleanEnv, egide } from "./support/egide-cli.js";
import { api, closedPort, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// `egide operator init|unseal|seal|rotate|key-status` against real servers, checking the
// server's seal state after each command.

beforeAll(() => assertBuildIsFresh());

describe("operator init", () => {
  let fresh: CliTestServer;
  beforeAll(async () => {
    fresh = await startCliTestServer({ uninitialized: true });
  });
  afterAll(() => fresh?.close());

  test("bad share counts are usage errors and do not initialise", async () => {
    const over = await egide(["operator", "init", "--key-shares", "2", "--key-threshold", "3"], { env: { EGIDE_ADDR: fresh.url } });
    expect(over.code).toBe(2);
    expect(over.stderr).toBe("egide: --key-threshold (3) cannot exceed --key-shares (2)\n");
    const zero = await egide(["operator", "init", "--key-shares", "0"], { env: { EGIDE_ADDR: fresh.url } });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toContain("expected a whole number of at least 1");
    expect((await api(fresh, "GET", "sys/init")).body.initialized).toBe(false);
  });

  test("prints the key shares and root token with a warning; the keys unseal the server and the token works", async () => {
    const run = await egide(["operator", "init", "--key-shares", "3", "--key-threshold", "2"], { env: { EGIDE_ADDR: fresh.url } });
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    const keys = [...run.stdout.matchAll(/^Unseal Key (\d): (\S+)$/gm)].map((match) => match[2] as string);
    expect(keys).toHaveLength(3);
    const rootToken = /^Initial Root Token: (\S+)$/m.exec(run.stdout)?.[1] as string;
    expect(rootToken).toMatch(/^egs\./);
    expect(run.stdout).toContain("Egide initialized with 3 key shares and a key threshold of 2.");
    expect(run.stdout).toContain("WARNING");
    expect((await api(fresh, "GET", "sys/seal-status")).body).toMatchObject({ initialized: true, sealed: true, t: 2, n: 3 });

    // Two of the printed keys (one piped, one as an argument) unseal it.
    const first = await egide(["operator", "unseal"], { env: { EGIDE_ADDR: fresh.url }, input: `${keys[0]}\n` });
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/Sealed\s+true/);
    expect(first.stdout).toMatch(/Unseal Progress\s+1\/2/);
    expect(first.stdout).not.toContain(keys[0]);
    const second = await egide(["operator", "unseal", keys[2] as string], { env: { EGIDE_ADDR: fresh.url } });
    expect(second.code).toBe(0);
    expect(second.stdout).toMatch(/Sealed\s+false/);
    expect((await api(fresh, "GET", "sys/seal-status")).body.sealed).toBe(false);
    expect((await api(fresh, "GET", "auth/token/lookup-self", undefined, rootToken)).status).toBe(200);

    const again = await egide(["operator", "init"], { env: { EGIDE_ADDR: fresh.url } });
    expect(again).toEqual({ code: 1, stdout: "", stderr: "egide: bad request (400): Vault is already initialized\n" });
  });

  test("--format json prints the server's answer (keys, keys_base64, root_token)", async () => {
    const other = await startCliTestServer({ uninitialized: true });
    try {
      const run = await egide(["operator", "init", "--key-shares", "1", "--key-threshold", "1", "--format", "json"], {
        env: { EGIDE_ADDR: other.url },
      });
      expect(run.code).toBe(0);
      const body = JSON.parse(run.stdout);
      expect(body.keys).toHaveLength(1);
      expect(body.keys_base64).toHaveLength(1);
      expect(body.root_token).toMatch(/^egs\./);
      const unseal = await egide(["operator", "unseal", "--format", "json"], {
        env: { EGIDE_ADDR: other.url },
        input: body.keys_base64[0],
      });
      expect(JSON.parse(unseal.stdout)).toMatchObject({ sealed: false, t: 1, n: 1 });
    } finally {
      await other.close();
    }
  });
});

describe("operator seal and unseal", () => {
  let server: CliTestServer;
  beforeAll(async () => {
    server = await startCliTestServer({ scheme: { shares: 3, threshold: 2 } });
  });
  afterAll(() => server?.close());

  test("seal needs a token allowed to seal: a wrong token is refused and the server stays unsealed", async () => {
    const wrong = await egide(["operator", "seal"], { env: { ...server.env, EGIDE_TOKEN: "egs.nope" } });
    expect(wrong).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
    expect((await api(server, "GET", "sys/seal-status")).body.sealed).toBe(false);
  });

  test("seal seals; unseal with a wrong key fails; --reset discards progress; the threshold unseals", async () => {
    const seal = await egide(["operator", "seal"], { env: server.env });
    expect(seal).toEqual({ code: 0, stdout: "Success! Egide is sealed.\n", stderr: "" });
    expect((await api(server, "GET", "sys/seal-status")).body.sealed).toBe(true);

    const wrong = await egide(["operator", "unseal", Buffer.alloc(32, 7).toString("base64")], { env: { EGIDE_ADDR: server.url } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/^egide: bad request \(400\): /);

    const one = await egide(["operator", "unseal"], { env: { EGIDE_ADDR: server.url }, input: `${server.keys[0]}\n` });
    expect(one.code).toBe(0);
    expect((await api(server, "GET", "sys/seal-status")).body.progress).toBe(1);
    const reset = await egide(["operator", "unseal", "--reset"], { env: { EGIDE_ADDR: server.url } });
    expect(reset.code).toBe(0);
    expect(reset.stdout).toMatch(/Unseal Progress\s+0\/2/);
    expect((await api(server, "GET", "sys/seal-status")).body.progress).toBe(0);

    for (const key of [server.keys[1], server.keys[2]]) {
      const run = await egide(["operator", "unseal"], { env: { EGIDE_ADDR: server.url }, input: `${key}\r\n` });
      expect(run.code).toBe(0);
    }
    expect((await api(server, "GET", "sys/seal-status")).body.sealed).toBe(false);
    const json = await egide(["operator", "seal", "--format", "json"], { env: server.env });
    expect(JSON.parse(json.stdout)).toEqual({ sealed: true });
    for (const key of server.keys.slice(0, 2)) await egide(["operator", "unseal", key], { env: { EGIDE_ADDR: server.url } });
    expect((await api(server, "GET", "sys/seal-status")).body.sealed).toBe(false);
  });

  test("on a terminal, unseal prompts for the key without echoing it", async () => {
    await egide(["operator", "seal"], { env: server.env });
    // script(1) runs the CLI on a pseudo-terminal, so stdin is a TTY as for a person typing.
    const child = spawn(
      "script",
      ["-qec", `${JSON.stringify(process.execPath)} ${JSON.stringify(EGIDE_BIN)} operator unseal`, "/dev/null"],
      {
        env: cleanEnv({ EGIDE_ADDR: server.url }),
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString("utf8")));
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    for (let i = 0; i < 100 && !output.includes("Unseal Key (will be hidden)"); i++)
      await new Promise((resolve) => setTimeout(resolve, 100));
    expect(output).toContain("Unseal Key (will be hidden)");
    // Typed once the prompt is up (the prompt has switched the terminal to raw mode).
    child.stdin.write(`${server.keys[0]}\r`);
    const code = await Promise.race([exited, new Promise<string>((resolve) => setTimeout(() => resolve("timeout"), 15_000))]);
    child.stdin.end();
    if (code === "timeout") child.kill("SIGKILL");
    expect(code).toBe(0);
    expect(output).toMatch(/Unseal Progress\s+1\/2/);
    expect(output).not.toContain(server.keys[0]);
    expect(output).not.toContain((server.keys[0] as string).slice(0, 12));
    expect((await api(server, "GET", "sys/seal-status")).body.progress).toBe(1);
    await egide(["operator", "unseal", "--reset"], { env: { EGIDE_ADDR: server.url } });
    for (const key of server.keys.slice(0, 2)) await egide(["operator", "unseal", key], { env: { EGIDE_ADDR: server.url } });
    expect((await api(server, "GET", "sys/seal-status")).body.sealed).toBe(false);
  });

  test("unseal without a key on an empty stdin, or with --reset and a key, is a usage error", async () => {
    const empty = await egide(["operator", "unseal"], { env: { EGIDE_ADDR: server.url } });
    expect(empty.code).toBe(2);
    expect(empty.stderr).toBe("egide: no unseal key given: pass KEY, type it at the prompt, or pipe it on stdin\n");
    const both = await egide(["operator", "unseal", "--reset", "abc"], { env: { EGIDE_ADDR: server.url } });
    expect(both.code).toBe(2);
    const noServer = await egide(["operator", "unseal", "abc"], { env: { EGIDE_ADDR: `http://127.0.0.1:${await closedPort()}` } });
    expect(noServer.code).toBe(1);
    expect(noServer.stderr).toContain("connection refused");
  });
});

describe("operator rotate and key-status", () => {
  let server: CliTestServer;
  beforeAll(async () => {
    server = await startCliTestServer();
  });
  afterAll(() => server?.close());

  test("key-status shows the term and versions; rotate adds a version and prints the new status", async () => {
    const before = await egide(["operator", "key-status"], { env: server.env });
    expect(before.code).toBe(0);
    expect(before.stdout).toMatch(/Key Term\s+1\n/);
    expect(before.stdout).toMatch(/Version\s+State\s+Created\s+Encryptions\n.*\n1\s+active\s+/);

    const rotate = await egide(["operator", "rotate"], { env: server.env });
    expect(rotate.code).toBe(0);
    expect(rotate.stdout).toMatch(/^Success! Rotated key\n\nKey\s+Value\n/);
    expect(rotate.stdout).toMatch(/Key Term\s+2\n/);
    expect((await api(server, "GET", "sys/key-status")).body.data.term).toBe(2);

    const json = await egide(["operator", "rotate", "--format", "json"], { env: server.env });
    expect(JSON.parse(json.stdout)).toMatchObject({ rotated: true, key_status: { term: 3 } });
    const status = await egide(["operator", "key-status", "--format", "json"], { env: server.env });
    const body = JSON.parse(status.stdout);
    expect(body.data.term).toBe(3);
    expect(body.data.versions.map((v: { state: string }) => v.state).at(-1)).toBe("active");
  });

  test("rotate and key-status refuse a wrong token, and rotate does not rotate then", async () => {
    const rotate = await egide(["operator", "rotate"], { env: { ...server.env, EGIDE_TOKEN: "egs.bad" } });
    expect(rotate).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
    const status = await egide(["operator", "key-status"], { env: { ...server.env, EGIDE_TOKEN: "egs.bad" } });
    expect(status.code).toBe(1);
    expect((await api(server, "GET", "sys/key-status")).body.data.term).toBe(3);
  });
});
