import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { ConfigError, DEFAULT_MAX_VALUE_BYTES, STORAGE_CONTRACT_VERSION } from "@egide/storage-core";
import { afterAll, describe, expect, it } from "vitest";
import { ETCD_DEFAULT_MAX_REQUEST_BYTES, backendDefinition, parseEtcdConfig, resolveEtcdOptions } from "../src/index.js";

const SECRET = "s3cr3t-value-never-shown";
const ENDPOINTS = ["http://127.0.0.1:2379"];

/** The ConfigError `fn` throws (failing when it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(ConfigError.isInstance(error), String(error)).toBe(true);
    return error as ConfigError;
  }
  return expect.fail("expected a ConfigError");
}

const dir = mkdtempSync(join(tmpdir(), "egide-etcd-options-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("backendDefinition", () => {
  it("names the type, the package and the contract version", () => {
    expect(backendDefinition.type).toBe("etcd");
    expect(backendDefinition.packageName).toBe("@egide/storage-etcd");
    expect(backendDefinition.contractVersion).toBe(STORAGE_CONTRACT_VERSION);
    expect(typeof backendDefinition.create).toBe("function");
  });
});

describe("parseEtcdConfig", () => {
  it("fills in the defaults", () => {
    const options = backendDefinition.parseConfig({ endpoints: ENDPOINTS }, {});
    expect(options).toMatchObject({
      endpoints: ["http://127.0.0.1:2379"],
      tls: false,
      prefix: "egide/",
      username: undefined,
      dialTimeoutMs: 5000,
      requestTimeoutMs: 15_000,
      maxValueBytes: DEFAULT_MAX_VALUE_BYTES,
      maxRequestBytes: ETCD_DEFAULT_MAX_REQUEST_BYTES,
      maxTxnOps: 128,
      transactionAttempts: 20,
      auditRetentionMs: 0,
      changeFeed: true,
    });
  });

  it("reads every option", () => {
    const options = parseEtcdConfig(
      {
        endpoints: ["http://10.1.2.3:2379", "http://etcd2.internal"],
        prefix: "apps/egide/",
        username: "egide",
        password_env: "ETCD_PW",
        dial_timeout: "2s",
        request_timeout: "30s",
        max_value_bytes: 2 * 1024 * 1024,
        max_request_bytes: 4 * 1024 * 1024,
        max_txn_ops: 1024,
        transaction_attempts: 5,
        audit_retention: "90d",
        change_feed: false,
      },
      { ETCD_PW: SECRET },
    );
    expect(options).toMatchObject({
      endpoints: ["http://10.1.2.3:2379", "http://etcd2.internal:2379"],
      prefix: "apps/egide/",
      username: "egide",
      dialTimeoutMs: 2000,
      requestTimeoutMs: 30_000,
      maxValueBytes: 2 * 1024 * 1024,
      maxRequestBytes: 4 * 1024 * 1024,
      maxTxnOps: 1024,
      transactionAttempts: 5,
      auditRetentionMs: 90 * 86_400_000,
      changeFeed: false,
    });
    expect(options.password).toBe(SECRET);
  });

  it("keeps the password out of logs, JSON and errors", () => {
    const options = parseEtcdConfig({ endpoints: ENDPOINTS, username: "egide", password_env: "ETCD_PW" }, { ETCD_PW: SECRET });
    expect(options.password).toBe(SECRET);
    expect(JSON.stringify(options)).not.toContain(SECRET);
    expect(inspect(options, { depth: 5 })).not.toContain(SECRET);
    expect({ ...options }).not.toHaveProperty("password");
    const programmatic = resolveEtcdOptions({ endpoints: ENDPOINTS, username: "egide", password: SECRET });
    expect(programmatic.password).toBe(SECRET);
    expect(JSON.stringify(programmatic)).not.toContain(SECRET);
  });

  it("refuses a password in the file, without repeating it", () => {
    const error = configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, username: "egide", password: SECRET }, {}));
    expect(error.option).toBe("storage.etcd.password");
    expect(error.message).toContain("password_env");
    expect(error.message).not.toContain(SECRET);
  });

  it("refuses an unknown option, naming it", () => {
    const error = configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, endpoint: "http://x:2379" }, {}));
    expect(error.code).toBe("INVALID_CONFIG");
    expect(error.option).toBe("storage.etcd.endpoint");
    expect(error.message).toContain("unknown option storage.etcd.endpoint");
  });

  it("requires endpoints", () => {
    expect(configError(() => parseEtcdConfig({}, {})).option).toBe("storage.etcd.endpoints");
    expect(configError(() => parseEtcdConfig(undefined, {})).option).toBe("storage.etcd.endpoints");
    for (const endpoints of [[], "http://127.0.0.1:2379", [2379]]) {
      expect(configError(() => parseEtcdConfig({ endpoints }, {})).option).toBe("storage.etcd.endpoints");
    }
  });

  it("refuses malformed, mixed, duplicated or credentialed endpoints", () => {
    for (const endpoints of [
      ["127.0.0.1:2379"],
      ["ftp://127.0.0.1:2379"],
      ["http://127.0.0.1:2379", "https://127.0.0.2:2379"],
      ["http://127.0.0.1:2379", "http://127.0.0.1:2379/"],
      ["http://user:pw@127.0.0.1:2379"],
      ["http://127.0.0.1:2379/v3"],
      ["not a url"],
    ]) {
      const error = configError(() => parseEtcdConfig({ endpoints }, {}));
      expect(error.option, JSON.stringify(endpoints)).toBe("storage.etcd.endpoints");
      expect(error.message).not.toContain(":pw@");
    }
  });

  it("requires the environment variable password_env names, naming the option and not a value", () => {
    const error = configError(() =>
      parseEtcdConfig({ endpoints: ENDPOINTS, username: "egide", password_env: "ETCD_PW" }, { OTHER: SECRET }),
    );
    expect(error.option).toBe("storage.etcd.password_env");
    expect(error.message).toContain("ETCD_PW");
    expect(error.message).not.toContain(SECRET);
  });

  it("pairs username and password_env", () => {
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, username: "egide" }, {})).option).toBe("storage.etcd.password_env");
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, password_env: "ETCD_PW" }, { ETCD_PW: SECRET })).option).toBe(
      "storage.etcd.username",
    );
  });

  it("validates the prefix as a key namespace", () => {
    for (const prefix of ["egide", "", "/egide/", "a//b/", "a/../b/", "tab\there/", 7]) {
      expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, prefix }, {})).option, JSON.stringify(prefix)).toBe(
        "storage.etcd.prefix",
      );
    }
    expect(parseEtcdConfig({ endpoints: ENDPOINTS, prefix: "team a/égide/" }, {}).prefix).toBe("team a/égide/");
  });

  it("refuses a max_value_bytes that an etcd request cannot carry, unless max_request_bytes is raised", () => {
    const error = configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, max_value_bytes: ETCD_DEFAULT_MAX_REQUEST_BYTES }, {}));
    expect(error.option).toBe("storage.etcd.max_value_bytes");
    expect(error.message).toContain("max_request_bytes");
    expect(error.message).toContain("--max-request-bytes");
    const raised = parseEtcdConfig({ endpoints: ENDPOINTS, max_value_bytes: 4 * 1024 * 1024, max_request_bytes: 8 * 1024 * 1024 }, {});
    expect(raised.maxValueBytes).toBe(4 * 1024 * 1024);
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, max_value_bytes: 0 }, {})).option).toBe(
      "storage.etcd.max_value_bytes",
    );
  });

  it("reads durations and refuses bad ones, naming the option", () => {
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, dial_timeout: "5x" }, {})).option).toBe("storage.etcd.dial_timeout");
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, request_timeout: 0 }, {})).option).toBe(
      "storage.etcd.request_timeout",
    );
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, dial_timeout: "20s", request_timeout: "10s" }, {})).option).toBe(
      "storage.etcd.dial_timeout",
    );
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, audit_retention: "forever" }, {})).option).toBe(
      "storage.etcd.audit_retention",
    );
  });

  it("checks the TLS files: https endpoints only, readable PEM, certificate and key together", () => {
    const ca = join(dir, "ca.crt");
    const key = join(dir, "client.key");
    const junk = join(dir, "junk.txt");
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    writeFileSync(key, "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n");
    writeFileSync(junk, "not pem");
    const https = ["https://127.0.0.1:2379"];
    const options = parseEtcdConfig({ endpoints: https, tls_ca_file: ca, tls_cert_file: ca, tls_key_file: key }, {});
    expect(options.tls).toBe(true);
    expect(options.tlsCa?.toString()).toContain("BEGIN CERTIFICATE");
    expect(configError(() => parseEtcdConfig({ endpoints: ENDPOINTS, tls_ca_file: ca }, {})).option).toBe("storage.etcd.tls_ca_file");
    expect(configError(() => parseEtcdConfig({ endpoints: https, tls_ca_file: join(dir, "missing.crt") }, {})).option).toBe(
      "storage.etcd.tls_ca_file",
    );
    expect(configError(() => parseEtcdConfig({ endpoints: https, tls_ca_file: junk }, {})).option).toBe("storage.etcd.tls_ca_file");
    expect(configError(() => parseEtcdConfig({ endpoints: https, tls_cert_file: ca }, {})).option).toBe("storage.etcd.tls_key_file");
    expect(configError(() => parseEtcdConfig({ endpoints: https, tls_key_file: key }, {})).option).toBe("storage.etcd.tls_cert_file");
  });

  it("keeps the TLS private key out of serialised, listed and inspected options, while the client can read it", () => {
    const ca = join(dir, "hidden-ca.crt");
    const key = join(dir, "hidden.key");
    const material = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC-key-material";
    writeFileSync(ca, "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    writeFileSync(key, `-----BEGIN PRIVATE KEY-----\n${material}\n-----END PRIVATE KEY-----\n`);
    const https = ["https://127.0.0.1:2379"];
    for (const options of [
      parseEtcdConfig({ endpoints: https, tls_ca_file: ca, tls_cert_file: ca, tls_key_file: key }, {}),
      resolveEtcdOptions({ endpoints: https, tlsCaFile: ca, tlsCertFile: ca, tlsKeyFile: key }),
    ]) {
      expect(options.tlsKey?.toString()).toContain(material);
      expect(Object.keys(options)).not.toContain("tlsKey");
      const json = JSON.stringify(options);
      expect(json).not.toContain("PRIVATE KEY");
      // A Buffer serialises and inspects as its bytes.
      const bytes = Buffer.from("PRIVATE KEY");
      expect(json).not.toContain(bytes.toJSON().data.join(","));
      expect(inspect(options, { depth: 5 })).not.toContain("PRIVATE KEY");
      // "BEGIN PR" as inspect shows a Buffer's bytes.
      expect(inspect(options, { depth: 5 })).not.toContain("42 45 47 49 4e 20 50 52");
      expect({ ...options }).not.toHaveProperty("tlsKey");
      expect(options.tlsKeyFile).toBe(key);
    }
  });

  it("refuses a table that is not a table", () => {
    expect(configError(() => parseEtcdConfig("endpoints", {})).option).toBe("storage.etcd");
  });
});
