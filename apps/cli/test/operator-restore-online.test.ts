import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";
import { egide } from "./support/egide-cli.js";

// `egide operator restore --input F` without --config uploads the file to the server, which
// verifies it, restores it in one transaction and seals itself. Over SQLite and PostgreSQL.

for (const storage of ["sqlite", "postgresql"] as const) {
  describe(`online restore (${storage})`, () => {
    let server: CliTestServer;
    let other: CliTestServer;

    beforeAll(async () => {
      server = await startCliTestServer({ storage, scheme: { shares: 3, threshold: 2 } });
      other = await startCliTestServer({ storage });
    }, 60_000);

    afterAll(async () => {
      await server?.close();
      await other?.close();
    });

    const unseal = async () => {
      for (const key of server.keys.slice(0, 2)) expect((await egide(["operator", "unseal", key], { env: server.env })).code).toBe(0);
    };
    const field = async (path: string) => (await egide(["kv", "get", "--field", "v", path], { env: server.env })).stdout.trim();

    test("brings the backup's secrets back, seals the server, and unseals with the same keys", async () => {
      expect((await egide(["kv", "put", "secret/app", "v=before"], { env: server.env })).code).toBe(0);
      const file = join(server.dir, "online.enc");
      expect((await egide(["operator", "backup", "--output", file], { env: server.env })).code).toBe(0);
      expect((await egide(["kv", "put", "secret/app", "v=after"], { env: server.env })).code).toBe(0);
      expect((await egide(["kv", "put", "secret/extra", "v=extra"], { env: server.env })).code).toBe(0);

      const refused = await egide(["operator", "restore", "--input", file], { env: server.env });
      expect(refused.code).toBe(1);
      expect(refused.stderr.trim().split("\n")).toHaveLength(1);
      expect(refused.stderr).toContain("[TARGET_NOT_EMPTY]");
      expect(await field("secret/app")).toBe("after");

      const restored = await egide(["operator", "restore", "--input", file, "--force", "--format", "json"], { env: server.env });
      expect(restored.code, restored.stderr).toBe(0);
      const report = JSON.parse(restored.stdout);
      expect(report).toMatchObject({ sealed: true, replaced: expect.any(Number) });
      expect(report.entries).toBeGreaterThan(3);
      expect((await egide(["status"], { env: server.env })).code).toBe(2);
      await unseal();
      expect(await field("secret/app")).toBe("before");
      expect((await egide(["kv", "get", "secret/extra"], { env: server.env })).code).toBe(2);
    });

    test("a damaged file or another installation's backup is refused and changes nothing", async () => {
      const file = join(server.dir, "good.enc");
      expect((await egide(["operator", "backup", "--output", file, "--chunk-size", "512"], { env: server.env })).code).toBe(0);
      expect((await egide(["kv", "put", "secret/app", "v=current"], { env: server.env })).code).toBe(0);
      const damaged = join(server.dir, "damaged.enc");
      const bytes = readFileSync(file);
      bytes.writeUInt8(bytes.readUInt8(bytes.length - 100) ^ 0x04, bytes.length - 100);
      writeFileSync(damaged, bytes);
      const foreign = join(server.dir, "foreign.enc");
      expect((await egide(["operator", "backup", "--output", foreign], { env: other.env })).code).toBe(0);
      for (const [input, code] of [
        [damaged, "CHUNK_INVALID"],
        [foreign, "FOREIGN_INSTALLATION"],
      ] as const) {
        const run = await egide(["operator", "restore", "--input", input, "--force"], { env: server.env });
        expect(run.code, code).toBe(1);
        expect(run.stderr, code).toContain(`[${code}]`);
      }
      expect((await egide(["status"], { env: server.env })).code).toBe(0);
      expect(await field("secret/app")).toBe("current");
    });

    test("without a token with sudo, and with no server, the restore is refused", async () => {
      const file = join(server.dir, "any.enc");
      expect((await egide(["operator", "backup", "--output", file], { env: server.env })).code).toBe(0);
      const denied = await egide(["operator", "restore", "--input", file, "--force"], {
        env: { ...server.env, EGIDE_TOKEN: "not-a-token" },
      });
      expect(denied.code).toBe(1);
      expect(denied.stderr).toMatch(/^egide: permission denied \(403\)/);
      const missing = await egide(["operator", "restore", "--input", join(server.dir, "missing.enc")], { env: server.env });
      expect(missing.code).toBe(1);
      expect(missing.stderr).toContain("cannot read");
      const none = await egide(["operator", "restore", "--input", file, "--force", "--address", "http://127.0.0.1:9"], { env: server.env });
      expect(none.code).toBe(1);
      expect(none.stderr).toContain("cannot reach the server");
    });
  });
}
