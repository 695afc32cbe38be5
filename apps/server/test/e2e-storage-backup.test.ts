import { summarizeStorage, verifyBackup } from "@egide/storage-backup";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { call, startTestServer } from "@egide/test-server";
import type { JsonBody, TestServer } from "@egide/test-server";

// GET /v1/sys/storage/backup streams a verified backup; POST /v1/sys/storage/restore replaces
// the storage with one, atomically, and seals the server. Over SQLite and PostgreSQL.

async function download(
  server: TestServer,
  token = server.rootToken,
  query = "",
): Promise<{ status: number; bytes: Buffer; type: string | null }> {
  const response = await fetch(`${server.url}/v1/sys/storage/backup${query}`, { headers: { "x-vault-token": token } });
  return { status: response.status, bytes: Buffer.from(await response.arrayBuffer()), type: response.headers.get("content-type") };
}

async function upload(server: TestServer, file: Buffer, query = ""): Promise<{ status: number; body: JsonBody }> {
  const response = await fetch(`${server.url}/v1/sys/storage/restore${query}`, {
    method: "POST",
    headers: { "x-vault-token": server.rootToken, "content-type": "application/octet-stream" },
    body: file,
  });
  return { status: response.status, body: await response.json() };
}

async function unseal(server: TestServer): Promise<void> {
  for (const key of server.keys) {
    const answer = await call(server.url, "PUT", "/v1/sys/unseal", { body: { key: key.toString("base64") } });
    if (answer.body.sealed === false) return;
  }
  throw new Error("the server did not unseal");
}

const readSecret = async (server: TestServer, path: string) =>
  (await call(server.url, "GET", `/v1/secret/data/${path}`, { token: server.rootToken })).body?.data?.data;

for (const storage of ["sqlite", "postgresql"] as const) {
  describe(`storage backup and restore over HTTP (${storage})`, () => {
    let server: TestServer;
    let other: TestServer;

    beforeAll(async () => {
      server = await startTestServer({ storage, scheme: { shares: 3, threshold: 2 } });
      other = await startTestServer({ storage });
      for (let i = 0; i < 30; i++) {
        expect(
          (await call(server.url, "POST", `/v1/secret/data/app/${i}`, { token: server.rootToken, body: { data: { n: String(i) } } }))
            .status,
        ).toBe(200);
      }
    }, 60_000);

    afterAll(async () => {
      await server?.close();
      await other?.close();
    });

    test("a root token downloads a backup that verifies and equals the storage", async () => {
      const { status, bytes, type } = await download(server, server.rootToken, "?chunk_bytes=1024");
      expect(status).toBe(200);
      expect(type).toBe("application/octet-stream");
      expect(bytes.subarray(0, 8).toString()).toBe("EGIDEBAK");
      const summary = await verifyBackup(Readable.from([bytes]), server.server.context.seal);
      expect(summary.header.chunkBytes).toBe(1024);
      expect(summary.records).toBeGreaterThan(30);
      const stored = await summarizeStorage(server.server.context.adapter);
      expect({ records: summary.records, digest: summary.digest }).toEqual(stored);
      const audit = await call(server.url, "GET", "/v1/sys/audit-log?path_prefix=sys/storage/backup", { token: server.rootToken });
      expect(audit.body.data.entries.some((row: { success: boolean }) => row.success)).toBe(true);
    });

    test("without sudo, with a bad chunk size, and while sealed the backup is refused", async () => {
      await call(server.url, "PUT", "/v1/sys/policies/acl/backup-read", {
        token: server.rootToken,
        body: { policy: 'path "sys/storage/backup" { capabilities = ["read"] }' },
      });
      const created = await call(server.url, "POST", "/v1/auth/token/create", {
        token: server.rootToken,
        body: { policies: ["backup-read"] },
      });
      expect((await download(server, created.body.auth.client_token)).status).toBe(403);
      expect((await download(server, server.rootToken, "?chunk_bytes=12")).status).toBe(400);
      expect((await download(server, "not-a-token")).status).toBe(403);
    });

    test("a restore brings the backup's secrets back in one step, activates a new key version and seals", async () => {
      const backup = (await download(server)).bytes;
      await call(server.url, "POST", "/v1/secret/data/app/0", { token: server.rootToken, body: { data: { n: "changed" } } });
      await call(server.url, "DELETE", "/v1/secret/metadata/app/1", { token: server.rootToken });
      await call(server.url, "POST", "/v1/secret/data/app/new", { token: server.rootToken, body: { data: { n: "new" } } });
      const termBefore = (await call(server.url, "GET", "/v1/sys/key-status", { token: server.rootToken })).body.data.term;

      const refused = await upload(server, backup);
      expect(refused.status).toBe(409);
      expect(refused.body.errors[0]).toContain("TARGET_NOT_EMPTY");
      expect(await readSecret(server, "app/0")).toEqual({ n: "changed" });

      const restored = await upload(server, backup, "?force=true");
      expect(restored.status).toBe(200);
      expect(restored.body.data.sealed).toBe(true);
      expect(restored.body.data.key_version).toBeGreaterThan(termBefore);
      expect((await call(server.url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(true);
      await unseal(server);
      expect(await readSecret(server, "app/0")).toEqual({ n: "0" });
      expect(await readSecret(server, "app/1")).toEqual({ n: "1" });
      expect((await call(server.url, "GET", "/v1/secret/data/app/new", { token: server.rootToken })).status).toBe(404);
      expect((await call(server.url, "GET", "/v1/sys/key-status", { token: server.rootToken })).body.data.term).toBe(
        restored.body.data.key_version,
      );
      // Writes after the restore work and read back.
      expect(
        (await call(server.url, "POST", "/v1/secret/data/app/after", { token: server.rootToken, body: { data: { n: "after" } } })).status,
      ).toBe(200);
      expect(await readSecret(server, "app/after")).toEqual({ n: "after" });
    });

    test("a damaged file, a truncated one and another installation's backup change nothing", async () => {
      const backup = (await download(server, server.rootToken, "?chunk_bytes=512")).bytes;
      const foreign = (await download(other)).bytes;
      // The unseal of the previous test started a background rewrap: let it finish first.
      await server.server.context.seal.rewrapInBackground();
      const before = await summarizeStorage(server.server.context.adapter);
      const flipped = Buffer.from(backup);
      flipped.writeUInt8(flipped.readUInt8(flipped.length - 40) ^ 0x01, flipped.length - 40);
      // A flipped byte or a cut lands in a chunk's body (CHUNK_INVALID) or in a chunk's length
      // field (TRUNCATED: the file then ends inside a chunk), depending on where the run's chunk
      // boundaries fall; either way the damage is refused and nothing changes.
      const damaged = /CHUNK_INVALID|TRUNCATED/;
      const cases: Array<[Buffer, string | RegExp]> = [
        [flipped, damaged],
        [backup.subarray(0, backup.length - 600), damaged],
        [backup.subarray(0, 50), "TRUNCATED"],
        [Buffer.concat([backup, Buffer.from([0])]), "CHUNK_INVALID"],
        [foreign, "FOREIGN_INSTALLATION"],
        [Buffer.from("not a backup at all, just text"), "NOT_A_BACKUP"],
      ];
      for (const [file, code] of cases) {
        const answer = await upload(server, file, "?force=true");
        expect(answer.status, String(code)).toBe(400);
        if (typeof code === "string") expect(answer.body.errors[0], code).toContain(code);
        else expect(answer.body.errors[0], String(code)).toMatch(code);
      }
      expect((await call(server.url, "GET", "/v1/sys/seal-status")).body.sealed).toBe(false);
      expect(await summarizeStorage(server.server.context.adapter)).toEqual(before);
    });
  });
}
