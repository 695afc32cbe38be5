import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { selfSignedCertificate } from "@egide/test-server";
import { parseServerConfig, startServer } from "../src/index.js";

// The listener as operators meet it: TLS from configured files, graceful shutdown with a
// request in flight, and the egide-server binary (dev mode, signals, configuration errors).

const dir = mkdtempSync(join(tmpdir(), "egide-listener-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function sqliteToml(name: string, listener: string): string {
  return `log_level = "silent"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, `${name}.db`))}\n[listener]\n${listener}\n`;
}

describe("TLS listener", () => {
  let cert = "";
  let key = "";
  beforeAll(() => {
    ({ certFile: cert, keyFile: key } = selfSignedCertificate(dir));
  });

  function get(port: number, path: string, method = "GET", token?: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        { host: "127.0.0.1", port, path, method, ca: readFileSync(cert), headers: token ? { "x-vault-token": token } : {} },
        (res) => {
          let body = "";
          res.on("data", (chunk) => (body += chunk));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  test("serves HTTPS with the configured certificate, LIST included, and refuses plain HTTP", async () => {
    const config = parseServerConfig(
      sqliteToml("tls", `address = "127.0.0.1:0"\ntls_cert_file = ${JSON.stringify(cert)}\ntls_key_file = ${JSON.stringify(key)}`),
    );
    const server = await startServer({ config });
    try {
      expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
      const { rootToken } = await server.initialize({ shares: 1, threshold: 1 }, true);
      const health = await get(server.port, "/v1/sys/health");
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body).storage.type).toBe("sqlite");
      const list = await get(server.port, "/v1/sys/policies/acl", "LIST", rootToken);
      expect(list.status).toBe(200);
      expect(JSON.parse(list.body).data.keys).toContain("default");
      // A plain HTTP request on the TLS port gets no HTTP answer.
      const plain = await new Promise<string>((resolve) => {
        const socket = connect(server.port, "127.0.0.1", () => socket.write("GET /v1/sys/health HTTP/1.1\r\nHost: x\r\n\r\n"));
        let text = "";
        socket.on("data", (chunk) => (text += chunk.toString("latin1")));
        socket.on("close", () => resolve(text));
        socket.on("error", () => resolve(text));
      });
      expect(plain).not.toContain("HTTP/1.1 200");
    } finally {
      await server.close();
    }
  });
});

describe("graceful shutdown", () => {
  test("close() lets a request already in flight finish, then refuses new connections", async () => {
    const server = await startServer({ config: parseServerConfig(sqliteToml("shutdown", `address = "127.0.0.1:0"\ntls_disable = true`)) });
    const { rootToken } = await server.initialize({ shares: 1, threshold: 1 }, true);
    const body = JSON.stringify({ data: { value: "x".repeat(1000) } });
    // Send the head and half the body, close the server, then send the rest.
    const socket = connect(server.port, "127.0.0.1");
    await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
    let response = "";
    socket.on("data", (chunk) => (response += chunk.toString("latin1")));
    socket.write(
      `POST /v1/secret/data/inflight HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: ${rootToken}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body.slice(0, 500)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    let closed = false;
    const closing = server.close().then(() => (closed = true));
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(closed).toBe(false);
    socket.write(body.slice(500));
    await closing;
    await new Promise((resolve) => socket.once("close", resolve));
    expect(response).toMatch(/^HTTP\/1\.1 200/);
    expect(response).toContain('"version":1');
    const refused = await fetch(`${server.url}/v1/sys/health`).then(
      () => "answered",
      () => "refused",
    );
    expect(refused).toBe("refused");
  });
});

describe("egide-server binary", () => {
  const bin = fileURLToPath(new URL("../dist/bin/egide-server.js", import.meta.url));

  test("--dev prints the address, root token and unseal key with a warning, serves, and exits 0 on SIGTERM", async () => {
    const child = spawn(process.execPath, [bin, "--dev", "--dev-listen-address", "127.0.0.1:0"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.stderr.on("data", (chunk) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
    try {
      for (let i = 0; i < 100 && !/Root Token: \S+/.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 100));
      expect(out).toContain("WARNING! dev mode is enabled!");
      const url = /Api Address: (\S+)/.exec(out)?.[1] as string;
      const token = /Root Token: (\S+)/.exec(out)?.[1] as string;
      expect(/Unseal Key: \S{44}/.test(out)).toBe(true);
      const write = await fetch(`${url}/v1/secret/data/dev`, {
        method: "POST",
        headers: { "x-vault-token": token },
        body: JSON.stringify({ data: { a: "b" } }),
      });
      expect(write.status).toBe(200);
      const health = await (await fetch(`${url}/v1/sys/health`)).json();
      expect(health).toMatchObject({ initialized: true, sealed: false, storage: { type: "sqlite", status: "healthy" } });
    } finally {
      child.kill("SIGTERM");
    }
    expect(await exited).toBe(0);
    expect(out).toContain("shutting down");
  });

  test("a configuration error exits 1 naming the option; bad arguments exit 2", () => {
    const file = join(dir, "bad.toml");
    writeFileSync(file, `[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = "x.db"\n[listener]\naddress = "127.0.0.1:0"\n`);
    const run = (args: string[]) => {
      try {
        execFileSync(process.execPath, [bin, ...args], { stdio: "pipe" });
        return { code: 0, stderr: "" };
      } catch (error) {
        const failure = error as { status: number; stderr: Buffer };
        return { code: failure.status, stderr: failure.stderr.toString() };
      }
    };
    const bad = run(["--config", file]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("listener.tls_cert_file");
    expect(run([]).code).toBe(2);
    expect(run(["--dev", "--config", file]).code).toBe(2);
    expect(run(["--what"]).code).toBe(2);
  });

  test("an adapter type nobody installed is a clear error", () => {
    const file = join(dir, "unknown.toml");
    writeFileSync(file, `[storage]\ntype = "etcd"\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`);
    let stderr = "";
    try {
      execFileSync(process.execPath, [bin, "--config", file], { stdio: "pipe" });
    } catch (error) {
      stderr = (error as { stderr: Buffer }).stderr.toString();
    }
    expect(stderr).toContain("storage.type");
    expect(stderr).toMatch(/etcd/);
  });
});

describe("the storage adapter a configuration names", () => {
  const toml = (type: string) =>
    `log_level = "silent"\n[storage]\ntype = ${JSON.stringify(type)}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;

  test("an unshipped type resolves by the conventions @egide/storage-<type> and egide-storage-<type> and, when neither is installed, names them", async () => {
    const failure = await startServer({ config: parseServerConfig(toml("s3")) }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED", option: "storage.type" });
    expect((failure as Error).message).toContain(
      "needs an adapter package, and neither @egide/storage-s3 nor egide-storage-s3 is installed; install it with: npm install @egide/storage-s3",
    );
    expect((failure as Error).message).toContain("storage types known here: postgresql, sqlite");
  });

  test("a type that cannot be a package name is refused before anything is imported", async () => {
    for (const type of ["../storage-sqlite", "SQLite", "sqlite/../../x", "@egide/storage-sqlite"]) {
      // Refused by the configuration parser already, and by the registry for a config built in code.
      expect(() => parseServerConfig(toml(type)), type).toThrow(
        expect.objectContaining({ code: "UNKNOWN_BACKEND", option: "storage.type" }),
      );
      const config = parseServerConfig(toml("sqlite"));
      const failure = await startServer({ config: { ...config, storage: { ...config.storage, type } } }).catch((e: unknown) => e);
      expect(failure, type).toMatchObject({ code: "UNKNOWN_BACKEND", option: "storage.type" });
    }
  });
});
