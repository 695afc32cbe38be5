import { createServer } from "node:net";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CliError } from "../src/cli-error.js";
import { EgideApiError } from "../src/client/egide-api-error.js";
import { EgideClient, encodePath } from "../src/client/egide-client.js";
import { resolveConnectionOptions } from "../src/client/connection-options.js";
import { closedPort, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// The HTTP client in process (the backup command reuses it, stream() in particular).

let server: CliTestServer;
let tls: CliTestServer;
beforeAll(async () => {
  server = await startCliTestServer();
  tls = await startCliTestServer({ tls: true });
});
afterAll(async () => {
  await server?.close();
  await tls?.close();
});

const client = (token?: string) => new EgideClient({ address: server.url, ...(token === undefined ? {} : { token }) });

describe("EgideClient", () => {
  test("request: JSON in and out; 204 gives a null body; list sends list=true", async () => {
    const root = client(server.rootToken);
    const write = await root.put<{ data: { version: number } }>(`secret/data/${encodePath("with space/ü")}`, { data: { a: "1" } });
    expect(write.status).toBe(200);
    expect(write.body?.data.version).toBe(1);
    const read = await root.get<{ data: { data: Record<string, string> } }>("secret/data/with%20space/%C3%BC");
    expect(read.body?.data.data).toEqual({ a: "1" });
    const list = await root.list<{ data: { keys: string[] } }>("secret/metadata/");
    expect(list.body?.data.keys).toEqual(["with space/"]);
    const patched = await root.patch<{ data: { version: number } }>("secret/data/with%20space/%C3%BC", { data: { b: "2" } });
    expect(patched.body?.data.version).toBe(2);
    const deleted = await root.delete("secret/data/with%20space/%C3%BC");
    expect(deleted).toEqual({ status: 204, body: null });
  });

  test("stream: a 2xx body unread, as a stream; an error status is thrown as an EgideApiError", async () => {
    const stream = await client(server.rootToken).stream("sys/audit-log", { limit: 2 });
    expect(stream.statusCode).toBe(200);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    expect(JSON.parse(Buffer.concat(chunks).toString("utf8")).data.entries).toHaveLength(2);
    const denied = await client("egs.wrong")
      .stream("sys/audit-log")
      .then(
        () => null,
        (error: unknown) => error,
      );
    expect(denied).toBeInstanceOf(EgideApiError);
    expect((denied as EgideApiError).status).toBe(403);
    expect((denied as EgideApiError).exitCode).toBe(1);
  });

  test("errors: statuses become one-line messages, multierror text flattened, the sealed server named Egide", async () => {
    const unsupported = await client(server.rootToken)
      .get("secret/bogus/path")
      .catch((error: unknown) => error);
    expect(unsupported).toBeInstanceOf(EgideApiError);
    expect((unsupported as EgideApiError).message).toBe("not found (404): unsupported path");
    expect(new EgideApiError(503, ["Vault is sealed"], null).message).toBe("Egide is sealed (503): unseal it with `egide operator unseal`");
    expect(new EgideApiError(403, ["permission denied"], null).message).toBe("permission denied (403)");
    expect(new EgideApiError(418, [], null).message).toBe("HTTP 418 (418)");
    const noToken = await client()
      .get("sys/key-status")
      .catch((error: unknown) => error);
    expect((noToken as Error).message).toBe("permission denied (403): no token was given (set EGIDE_TOKEN or pass --token)");
  });

  test("connection failures are CliErrors naming the address; TLS needs the CA", async () => {
    const port = await closedPort();
    const refused = await new EgideClient({ address: `http://127.0.0.1:${port}` }).get("sys/health").catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(CliError);
    expect((refused as CliError).message).toBe(`cannot reach the server at http://127.0.0.1:${port}: connection refused`);
    const withCa = new EgideClient(resolveConnectionOptions({ caCert: tls.caFile as string }, { EGIDE_ADDR: tls.url }));
    expect((await withCa.get<{ sealed: boolean }>("sys/seal-status")).body?.sealed).toBe(false);
    const untrusted = await new EgideClient({ address: tls.url }).get("sys/seal-status").catch((error: unknown) => error);
    expect((untrusted as Error).message).toContain("its TLS certificate is not trusted");
    // A server that accepts the connection and never answers.
    const silent = createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const slow = await new EgideClient({ address: `http://127.0.0.1:${silentPort}` }, { timeoutMs: 200 })
        .get("sys/health")
        .catch((error: unknown) => error);
      expect((slow as Error).message).toBe(`cannot reach the server at http://127.0.0.1:${silentPort}: no answer within 200 ms`);
    } finally {
      silent.close();
    }
  });
});

describe("resolveConnectionOptions", () => {
  test("flags over EGIDE_* over VAULT_* over the default; the address loses its trailing slash", () => {
    expect(resolveConnectionOptions({}, {})).toEqual({ address: "http://127.0.0.1:8200" });
    expect(resolveConnectionOptions({}, { VAULT_ADDR: "http://v:1/", VAULT_TOKEN: "vt" })).toEqual({ address: "http://v:1", token: "vt" });
    expect(
      resolveConnectionOptions({}, { VAULT_ADDR: "http://v:1", EGIDE_ADDR: "https://e:2", EGIDE_TOKEN: "et", VAULT_TOKEN: "vt" }),
    ).toEqual({ address: "https://e:2", token: "et" });
    expect(resolveConnectionOptions({ address: "http://f:3", token: "ft" }, { EGIDE_ADDR: "https://e:2", EGIDE_TOKEN: "et" })).toEqual({
      address: "http://f:3",
      token: "ft",
    });
    // An empty variable counts as unset.
    expect(resolveConnectionOptions({}, { EGIDE_ADDR: "", VAULT_ADDR: "http://v:1" }).address).toBe("http://v:1");
    expect(() => resolveConnectionOptions({ address: "ftp://x" }, {})).toThrow(/invalid server address/);
  });
});
