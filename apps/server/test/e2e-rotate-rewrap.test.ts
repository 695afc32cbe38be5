import Database from "better-sqlite3";
import { expect, test } from "vitest";
import { call, startTestServer } from "@egide/test-server";

// POST /v1/sys/rotate adds a key version and, in the background, rewraps every existing
// record to it: no record is left under the old version, and every secret still reads.

test("a rotation over HTTP is followed by a background rewrap of every record", async () => {
  const server = await startTestServer();
  try {
    for (let i = 0; i < 60; i++) {
      expect(
        (await call(server.url, "POST", `/v1/secret/data/app/${i}`, { token: server.rootToken, body: { data: { n: String(i) } } })).status,
      ).toBe(200);
    }
    expect((await call(server.url, "POST", "/v1/sys/rotate", { token: server.rootToken })).status).toBe(204);
    const status = await call(server.url, "GET", "/v1/sys/key-status", { token: server.rootToken });
    expect(status.body.data.term).toBe(2);

    const db = new Database(server.sqlitePath as string, { readonly: true });
    try {
      const versions = () =>
        (db.prepare("SELECT value FROM egide_storage WHERE key NOT LIKE '.egide/%'").pluck().all() as Buffer[]).map((value) =>
          value.readUInt32BE(2),
        );
      let left = versions().filter((v) => v !== 2).length;
      for (let i = 0; i < 100 && left > 0; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        left = versions().filter((v) => v !== 2).length;
      }
      expect(left).toBe(0);
      expect(versions().length).toBeGreaterThan(60);
    } finally {
      db.close();
    }
    for (const i of [0, 31, 59]) {
      expect((await call(server.url, "GET", `/v1/secret/data/app/${i}`, { token: server.rootToken })).body.data.data).toEqual({
        n: String(i),
      });
    }
  } finally {
    await server.close();
  }
});
