import { type EtcdCluster, type TestCertificates, createTestCertificates, startEtcd } from "@egide/test-etcd";
import { StorageError } from "@egide/storage-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EtcdBackend, backendDefinition } from "../src/index.js";
import { TEST_TIMEOUTS, freshPrefix } from "./support/etcd-fixture.js";

let certs: TestCertificates;
let serverTls: EtcdCluster;
let mutualTls: EtcdCluster;

beforeAll(async () => {
  certs = createTestCertificates();
  const tls = { certFile: certs.serverCertFile, keyFile: certs.serverKeyFile, caFile: certs.caFile };
  [serverTls, mutualTls] = await Promise.all([
    startEtcd({ tls }),
    startEtcd({ tls: { ...tls, clientCertAuth: true, clientCertFile: certs.clientCertFile, clientKeyFile: certs.clientKeyFile } }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.all([serverTls?.close(), mutualTls?.close()]);
  certs?.remove();
}, 60_000);

const timeouts = { dial_timeout: 1000, request_timeout: 3000 };

async function roundTrip(backend: EtcdBackend): Promise<void> {
  try {
    await backend.put("tls/k", Buffer.from("over tls"));
    expect((await backend.get("tls/k"))?.toString()).toBe("over tls");
    expect(await backend.list("tls/")).toEqual(["k"]);
  } finally {
    await backend.close();
  }
}

describe("TLS", () => {
  it("connects to an https endpoint that tls_ca_file verifies", async () => {
    expect(serverTls.endpoints[0]).toMatch(/^https:\/\//);
    const config = backendDefinition.parseConfig(
      { endpoints: serverTls.endpoints, prefix: freshPrefix(), tls_ca_file: certs.caFile, ...timeouts },
      {},
    );
    await roundTrip(await backendDefinition.create(config));
  });

  it("refuses a server its CA does not vouch for, with a clear non-retryable error", async () => {
    const error = await EtcdBackend.open({ endpoints: serverTls.endpoints, tlsCaFile: certs.otherCaFile, ...TEST_TIMEOUTS }).catch(
      (e: unknown) => e,
    );
    expect(StorageError.isInstance(error, "UNAVAILABLE")).toBe(true);
    expect((error as StorageError).retryable).toBe(false);
    expect((error as Error).message).toContain("tls_ca_file");
  });

  it("presents tls_cert_file and tls_key_file to a member that requires a client certificate", async () => {
    const config = backendDefinition.parseConfig(
      {
        endpoints: mutualTls.endpoints,
        prefix: freshPrefix(),
        tls_ca_file: certs.caFile,
        tls_cert_file: certs.clientCertFile,
        tls_key_file: certs.clientKeyFile,
        ...timeouts,
      },
      {},
    );
    await roundTrip(await backendDefinition.create(config));
  });

  it("fails clearly without a client certificate where one is required", async () => {
    const error = await EtcdBackend.open({
      endpoints: mutualTls.endpoints,
      tlsCaFile: certs.caFile,
      dialTimeoutMs: 1000,
      requestTimeoutMs: 3000,
    }).catch((e: unknown) => e);
    expect(StorageError.isInstance(error, "UNAVAILABLE")).toBe(true);
    expect((error as Error).message).toMatch(/tls_cert_file|certificate/);
  });
});
