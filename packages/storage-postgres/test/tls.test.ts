import { StorageError } from "@egide/storage-core";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { PostgresBackend } from "../src/index.js";
import { startTlsCluster, type TlsCluster } from "./support/tls-cluster.js";

type OpenOptions = Parameters<typeof PostgresBackend.open>[0];

/** Node's codes for a certificate chain that does not lead to a trusted CA. */
const UNTRUSTED_CHAIN_CODES = [
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
];
/** Node's code for a certificate that does not name the host. */
const WRONG_HOST_CODE = "ERR_TLS_CERT_ALTNAME_INVALID";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Every `code` along an error's `cause` chain (StorageError → pg/Node error → …). */
function codesOf(error: unknown): string[] {
  const codes: string[] = [];
  for (let current = error, depth = 0; current && depth < 10; current = (current as { cause?: unknown }).cause, depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === "string") codes.push(code);
  }
  return codes;
}

/** A one-line summary of an error, with its cause chain's codes, for assertion messages. */
function describeError(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return `${text} [codes: ${codesOf(error).join(", ")}]`;
}

describe("TLS to PostgreSQL (throwaway cluster with its own CA)", () => {
  let cluster: TlsCluster;
  /** A plain client over the Unix socket, to see the server's view of Egide's connections. */
  let observer: pg.Client;
  const opened: PostgresBackend[] = [];

  const open = async (options: Partial<OpenOptions>): Promise<PostgresBackend> => {
    const backend = await PostgresBackend.open({
      host: cluster.certifiedHost,
      port: cluster.port,
      database: "postgres",
      username: "postgres",
      poolMin: 1,
      poolMax: 2,
      connectionTimeoutMs: 5000,
      ...options,
    });
    opened.push(backend);
    return backend;
  };

  /** Expects `open` to be refused, and returns the error. */
  const refused = async (options: Partial<OpenOptions>): Promise<unknown> => {
    try {
      await open(options);
    } catch (error) {
      return error;
    }
    throw new Error(`PostgresBackend.open(${JSON.stringify(options)}) connected, but it must be refused`);
  };

  /** Whether each of Egide's connections is encrypted, as pg_stat_ssl reports it. */
  const egideSsl = async (): Promise<boolean[]> => {
    const result = await observer.query<{ ssl: boolean }>(
      `SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
       WHERE a.application_name = 'egide' AND a.datname = 'postgres'`,
    );
    return result.rows.map((row) => row.ssl);
  };

  /** Uses the backend, then reports the encryption of the connections it holds open. */
  const sslAfterUse = async (backend: PostgresBackend): Promise<boolean[]> => {
    await backend.put("tls/probe", Buffer.from("x"));
    expect(await backend.get("tls/probe")).toEqual(Buffer.from("x"));
    // A put and get leave their connection idle in the pool, where the server still lists it.
    const ssl = await egideSsl();
    expect(ssl.length, "no egide connection visible on the server").toBeGreaterThan(0);
    return ssl;
  };

  beforeAll(async () => {
    cluster = await startTlsCluster();
    observer = new pg.Client({ host: cluster.socketDir, port: cluster.port, user: "postgres", database: "postgres" });
    observer.on("error", () => undefined);
    await observer.connect();
  }, 120_000);

  afterEach(async () => {
    for (const backend of opened.splice(0)) await backend.close();
    // Closed connections leave pg_stat_activity asynchronously; the next test must only see its own.
    const deadline = Date.now() + 5000;
    while ((await egideSsl()).length > 0) {
      if (Date.now() > deadline) throw new Error("egide connections of the previous test are still open");
      await sleep(25);
    }
  });

  afterAll(async () => {
    for (const backend of opened.splice(0)) await backend.close().catch(() => undefined);
    await observer?.end().catch(() => undefined);
    await cluster?.stop();
  }, 30_000);

  it("verify-full with the right CA and the certified host name connects, encrypted", async () => {
    const backend = await open({ sslMode: "verify-full", sslRootCert: cluster.caCertPath });
    expect(await sslAfterUse(backend)).not.toContain(false);
    expect((await backend.health()).status).toBe("healthy");
  });

  it("verify-full refuses a server whose certificate comes from another CA", async () => {
    const error = await refused({ sslMode: "verify-full", sslRootCert: cluster.wrongCaCertPath });
    expect(StorageError.isInstance(error), describeError(error)).toBe(true);
    expect(
      codesOf(error).some((code) => UNTRUSTED_CHAIN_CODES.includes(code)),
      describeError(error),
    ).toBe(true);
  });

  it("verify-ca refuses a server whose certificate comes from another CA", async () => {
    const error = await refused({ sslMode: "verify-ca", sslRootCert: cluster.wrongCaCertPath });
    expect(StorageError.isInstance(error), describeError(error)).toBe(true);
    expect(
      codesOf(error).some((code) => UNTRUSTED_CHAIN_CODES.includes(code)),
      describeError(error),
    ).toBe(true);
  });

  it("verify-full refuses a host name the certificate does not carry", async () => {
    // The certificate names DNS:localhost only; 127.0.0.1 reaches the same server.
    const error = await refused({ host: "127.0.0.1", sslMode: "verify-full", sslRootCert: cluster.caCertPath });
    expect(StorageError.isInstance(error), describeError(error)).toBe(true);
    expect(codesOf(error), describeError(error)).toContain(WRONG_HOST_CODE);
  });

  it("verify-ca accepts that host name, since it checks the chain only", async () => {
    const backend = await open({ host: "127.0.0.1", sslMode: "verify-ca", sslRootCert: cluster.caCertPath });
    expect(await sslAfterUse(backend)).not.toContain(false);
  });

  it("require without a root certificate encrypts without verifying", async () => {
    // Neither the CA nor the host name (127.0.0.1 is not in the certificate) is checked.
    const backend = await open({ host: "127.0.0.1", sslMode: "require" });
    expect(await sslAfterUse(backend)).not.toContain(false);
  });

  it("require with a root certificate verifies the chain, as libpq does", async () => {
    const error = await refused({ sslMode: "require", sslRootCert: cluster.wrongCaCertPath });
    expect(
      codesOf(error).some((code) => UNTRUSTED_CHAIN_CODES.includes(code)),
      describeError(error),
    ).toBe(true);
  });

  it("prefer encrypts when the server offers TLS", async () => {
    const backend = await open({ sslMode: "prefer" });
    expect(await sslAfterUse(backend)).not.toContain(false);
  });

  it("disable connects in plain text to a server that allows it", async () => {
    const backend = await open({ sslMode: "disable" });
    expect(await sslAfterUse(backend)).not.toContain(true);
  });

  it("allow connects in plain text first when the server allows it", async () => {
    const backend = await open({ sslMode: "allow" });
    expect(await sslAfterUse(backend)).not.toContain(true);
  });
});
