import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import type { CliRun, CliRunOptions } from "./support/egide-cli.js";
import { api, closedPort, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// The connection options every networked command shares: --address / EGIDE_ADDR / VAULT_ADDR,
// --token / EGIDE_TOKEN / VAULT_TOKEN, --ca-cert / EGIDE_CACERT / VAULT_CACERT, and the errors
// of each (no server, wrong token, untrusted certificate, bad values), none of which may show
// the token.

let server: CliTestServer;
let tls: CliTestServer;
let closed: string;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer();
  tls = await startCliTestServer({ tls: true });
  closed = `http://127.0.0.1:${await closedPort()}`;
  await api(server, "POST", "secret/data/conn", { data: { value: "from-server" } });
});
afterAll(async () => {
  await server?.close();
  await tls?.close();
});

describe.concurrent("address and token resolution", () => {
  test("EGIDE_ADDR and EGIDE_TOKEN are used; VAULT_ADDR and VAULT_TOKEN are the fallbacks", async () => {
    const egideVars = await egide(["kv", "get", "--field", "value", "secret/conn"], {
      env: { EGIDE_ADDR: server.url, EGIDE_TOKEN: server.rootToken },
    });
    expect(egideVars).toMatchObject({ code: 0, stdout: "from-server", stderr: "" });
    const vaultVars = await egide(["kv", "get", "--field", "value", "secret/conn"], {
      env: { VAULT_ADDR: server.url, VAULT_TOKEN: server.rootToken },
    });
    expect(vaultVars).toMatchObject({ code: 0, stdout: "from-server" });
  });

  test("EGIDE_* wins over VAULT_*, and the flags win over both", async () => {
    const egideWins = await egide(["kv", "get", "--field", "value", "secret/conn"], {
      env: { EGIDE_ADDR: server.url, VAULT_ADDR: closed, EGIDE_TOKEN: server.rootToken, VAULT_TOKEN: "egs.wrong" },
    });
    expect(egideWins).toMatchObject({ code: 0, stdout: "from-server" });
    const flagsWin = await egide(["kv", "get", "--field", "value", "--address", server.url, "--token", server.rootToken, "secret/conn"], {
      env: { EGIDE_ADDR: closed, EGIDE_TOKEN: "egs.wrong" },
    });
    expect(flagsWin).toMatchObject({ code: 0, stdout: "from-server" });
    // The opposite direction fails, so the precedence is really tested.
    const flagLoses = await egide(["kv", "get", "--address", closed, "secret/conn"], {
      env: { EGIDE_ADDR: server.url, EGIDE_TOKEN: server.rootToken },
    });
    expect(flagLoses.code).toBe(1);
    expect(flagLoses.stderr).toContain(`cannot reach the server at ${closed}`);
  });

  test("without any address the default is http://127.0.0.1:8200", async () => {
    const run = await egide(["kv", "get", "secret/conn"], { env: { EGIDE_TOKEN: "egs.x" } });
    // Whatever listens there on this machine (most likely nothing), the CLI asked that address.
    if (run.code === 1 && run.stderr.includes("cannot reach")) expect(run.stderr).toContain("http://127.0.0.1:8200");
    else expect(run.code).not.toBe(0);
  });

  test("a malformed address or an unreadable CA file is a usage error (exit 2)", async () => {
    const address = await egide(["status", "--address", "127.0.0.1:8200"]);
    expect(address.code).toBe(2);
    expect(address.stderr).toBe('egide: invalid server address "127.0.0.1:8200": use http://HOST:PORT or https://HOST:PORT\n');
    const ca = await egide(["status", "--address", tls.url, "--ca-cert", join(tls.dir, "missing.pem")]);
    expect(ca.code).toBe(2);
    expect(ca.stderr).toContain("cannot read the CA certificate");
    expect(ca.stderr).toContain("ENOENT");
  });
});

describe.concurrent("errors never show the token", () => {
  test("wrong token: exit 1, 'permission denied (403)', and the token is not in the output", async () => {
    const token = "egs.this-token-must-never-be-printed-0123456789";
    const runs = await Promise.all([
      egide(["kv", "get", "secret/conn"], { env: { EGIDE_ADDR: server.url, EGIDE_TOKEN: token } }),
      egide(["kv", "put", "secret/conn", "a=b"], { env: { EGIDE_ADDR: server.url, VAULT_TOKEN: token } }),
      egide(["token", "lookup", "--token", token], { env: { EGIDE_ADDR: server.url } }),
      egide(["token", "lookup", token], { env: { EGIDE_ADDR: server.url, EGIDE_TOKEN: token } }),
      egide(["policy", "list", "--address", closed, "--token", token]),
      egide(["audit", "list", "--since", "yesterday", "--token", token], { env: { EGIDE_ADDR: server.url } }),
      egide(["kv", "get", "--token", token, "--bogus", "secret/conn"], { env: { EGIDE_ADDR: server.url } }),
      egide(["operator", "seal", "--token", `${token}\nx`], { env: { EGIDE_ADDR: server.url } }),
    ]);
    expect(runs.map((run) => run.code)).toEqual([1, 1, 1, 1, 1, 2, 2, 1]);
    expect(runs[0]?.stderr).toBe("egide: permission denied (403)\n");
    for (const run of runs) {
      expect(run.stderr).not.toContain(token);
      expect(run.stderr).not.toContain("this-token-must-never");
      expect(run.stdout).not.toContain("this-token-must-never");
      expect(run.stderr.trimEnd().split("\n")).toHaveLength(1);
    }
    // The server is still unsealed: the header with a line break was refused before sending.
    expect((await api(server, "GET", "sys/seal-status")).body.sealed).toBe(false);
  });

  test("no token at all: the 403 says that no token was given", async () => {
    const run = await egide(["kv", "get", "secret/conn"], { env: { EGIDE_ADDR: server.url } });
    expect(run.code).toBe(1);
    expect(run.stderr).toBe("egide: permission denied (403): no token was given (set EGIDE_TOKEN or pass --token)\n");
  });

  test("the root token never appears in the output of failing commands that had it", async () => {
    const runs = await Promise.all([
      egide(["kv", "get", "secret/missing"], { env: server.env }),
      egide(["policy", "read", "nope"], { env: server.env }),
      egide(["operator", "init"], { env: server.env }),
      egide(["kv", "destroy", "secret/conn"], { env: server.env }),
    ]);
    expect(runs.map((run) => run.code)).toEqual([2, 2, 1, 2]);
    for (const run of runs) {
      expect(run.stderr).not.toContain(server.rootToken);
      expect(run.stdout).not.toContain(server.rootToken);
    }
  });
});

describe.concurrent("TLS with a private CA", () => {
  test("https with --ca-cert, EGIDE_CACERT or VAULT_CACERT works", async () => {
    const ca = tls.caFile as string;
    const flag = await egide(["status", "--ca-cert", ca], { env: { EGIDE_ADDR: tls.url } });
    expect(flag.stderr).toBe("");
    expect(flag.code).toBe(0);
    expect(flag.stdout).toMatch(/Sealed\s+false/);
    const egideVar = await egide(["kv", "put", "secret/tls", "over=https"], { env: { ...tls.env, EGIDE_CACERT: ca } });
    expect(egideVar.code).toBe(0);
    const vaultVar = await egide(["kv", "get", "--field", "over", "secret/tls"], {
      env: { VAULT_ADDR: tls.url, VAULT_TOKEN: tls.rootToken, VAULT_CACERT: ca },
    });
    expect(vaultVar).toMatchObject({ code: 0, stdout: "https" });
  });

  test("without the CA the certificate is not trusted: exit 1 with a hint; plain http to a TLS port fails clearly", async () => {
    const untrusted = await egide(["status"], { env: { EGIDE_ADDR: tls.url } });
    expect(untrusted.code).toBe(1);
    expect(untrusted.stderr).toMatch(
      /^egide: cannot reach the server at https:\/\/127\.0\.0\.1:\d+: its TLS certificate is not trusted \(DEPTH_ZERO_SELF_SIGNED_CERT\); pass its CA with --ca-cert or EGIDE_CACERT\n$/,
    );
    // A CA that did not sign the certificate does not help.
    const otherCa = join(tls.dir, "other.pem");
    writeFileSync(otherCa, (await import("node:tls")).rootCertificates[0] ?? "");
    const wrongCa = await egide(["status", "--ca-cert", otherCa], { env: { EGIDE_ADDR: tls.url } });
    expect(wrongCa.code).toBe(1);
    expect(wrongCa.stderr).toContain("not trusted");
    const plain = await egide(["status"], { env: { EGIDE_ADDR: tls.url.replace("https:", "http:") } });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toMatch(/^egide: cannot reach the server at http:\/\/127\.0\.0\.1:\d+: /);
  });
});

/** Runs the binary once per argument list, four at a time (the machine has two cores). */
async function runAll(argsList: string[][], options: CliRunOptions): Promise<CliRun[]> {
  const runs: CliRun[] = [];
  for (let i = 0; i < argsList.length; i += 4)
    runs.push(...(await Promise.all(argsList.slice(i, i + 4).map((args) => egide(args, options)))));
  return runs;
}

describe("every networked command", () => {
  const commands = [
    ["status"],
    ["operator", "init"],
    ["operator", "unseal", "a2V5"],
    ["operator", "seal"],
    ["operator", "rotate"],
    ["operator", "key-status"],
    ["kv", "put", "secret/x", "a=1"],
    ["kv", "patch", "secret/x", "a=1"],
    ["kv", "get", "secret/x"],
    ["kv", "list", "secret/"],
    ["kv", "delete", "secret/x"],
    ["kv", "undelete", "--versions", "1", "secret/x"],
    ["kv", "destroy", "--versions", "1", "secret/x"],
    ["kv", "metadata", "get", "secret/x"],
    ["kv", "metadata", "delete", "secret/x"],
    ["token", "create"],
    ["token", "lookup"],
    ["token", "revoke", "--self"],
    ["policy", "write", "p", "-"],
    ["policy", "read", "default"],
    ["policy", "list"],
    ["policy", "delete", "p"],
    ["audit", "list"],
  ];

  test("no server: exit 1 and the one connection line, nothing on stdout", async () => {
    const runs = await runAll(commands, {
      env: { EGIDE_ADDR: closed, EGIDE_TOKEN: server.rootToken },
      input: 'path "x" { capabilities = ["read"] }',
    });
    for (const [index, run] of runs.entries()) {
      const name = commands[index]?.join(" ");
      expect(run.code, name).toBe(1);
      expect(run.stdout, name).toBe("");
      expect(run.stderr, name).toBe(`egide: cannot reach the server at ${closed}: connection refused\n`);
    }
  });

  test("a sealed server: exit 1 (status: 2) and 'Egide is sealed', never the token", async () => {
    const sealed = await startCliTestServer();
    try {
      sealed.server.context.seal.seal();
      // One command per way a command handles errors (kv's mount lookup, the 404 translations of
      // get/list/patch/metadata/policy read, plain requests, rotate's follow-up read). unseal,
      // init and status answer while sealed by design.
      const list = [
        ["kv", "put", "secret/x", "a=1"],
        ["kv", "patch", "secret/x", "a=1"],
        ["kv", "get", "secret/x"],
        ["kv", "list", "secret/"],
        ["kv", "metadata", "get", "secret/x"],
        ["operator", "seal"],
        ["operator", "rotate"],
        ["token", "create"],
        ["token", "lookup"],
        ["policy", "read", "default"],
        ["policy", "write", "p", "-"],
        ["audit", "list"],
      ];
      const runs = await runAll(list, { env: sealed.env, input: 'path "x" { capabilities = ["read"] }' });
      for (const [index, run] of runs.entries()) {
        const name = list[index]?.join(" ");
        expect(run.code, name).toBe(1);
        expect(run.stdout, name).toBe("");
        expect(run.stderr, name).toBe("egide: Egide is sealed (503): unseal it with `egide operator unseal`\n");
        expect(run.stderr, name).not.toContain(sealed.rootToken);
      }
      expect((await egide(["status"], { env: sealed.env })).code).toBe(2);
    } finally {
      await sealed.close();
    }
  });
});
