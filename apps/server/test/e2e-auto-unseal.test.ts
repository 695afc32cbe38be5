import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, test } from "vitest";
import { parseServerConfig, startServer } from "../src/index.js";
import { call } from "@egide/test-server";

// Auto-unseal as a service uses it: init writes the key file (mode 0600) and stays unsealed;
// a restart unseals from the file, or from an environment variable.

const dir = mkdtempSync(join(tmpdir(), "egide-auto-unseal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(seal: string) {
  return parseServerConfig(
    `log_level = "silent"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "egide.db"))}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n[seal]\n${seal}\n`,
  );
}

test("a key file: init writes it and stays unsealed; a restart unseals from it; so does an environment variable", async () => {
  const keyFile = join(dir, "unseal.key");
  const first = await startServer({ config: config(`unseal_key_file = ${JSON.stringify(keyFile)}`) });
  let rootToken: string;
  let keyBase64: string;
  try {
    const refused = await call(first.url, "PUT", "/v1/sys/init", { body: { secret_shares: 3, secret_threshold: 2 } });
    expect(refused.status).toBe(400);
    expect(refused.body.errors[0]).toMatch(/auto-unseal/);
    const init = await call(first.url, "PUT", "/v1/sys/init", { body: {} });
    expect(init.status).toBe(200);
    rootToken = init.body.root_token;
    keyBase64 = init.body.keys_base64[0];
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    expect((await call(first.url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
    expect((await call(first.url, "POST", "/v1/secret/data/app", { token: rootToken, body: { data: { a: "1" } } })).status).toBe(200);
  } finally {
    await first.close();
  }

  const second = await startServer({ config: config(`unseal_key_file = ${JSON.stringify(keyFile)}`) });
  try {
    expect((await call(second.url, "GET", "/v1/sys/health")).status).toBe(200);
    expect((await call(second.url, "GET", "/v1/secret/data/app", { token: rootToken })).body.data.data).toEqual({ a: "1" });
  } finally {
    await second.close();
  }

  process.env.EGIDE_TEST_UNSEAL_KEY = keyBase64;
  const third = await startServer({ config: config('unseal_key_env = "EGIDE_TEST_UNSEAL_KEY"') });
  try {
    expect((await call(third.url, "GET", "/v1/secret/data/app", { token: rootToken })).body.data.data).toEqual({ a: "1" });
  } finally {
    delete process.env.EGIDE_TEST_UNSEAL_KEY;
    await third.close();
  }
});
