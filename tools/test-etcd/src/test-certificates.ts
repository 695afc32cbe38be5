import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Throwaway PEM files made by {@link createTestCertificates}. */
export interface TestCertificates {
  /** The directory holding them. */
  dir: string;
  /** The CA certificate, which clients trust (`tls_ca_file`). */
  caFile: string;
  /** The server certificate (for 127.0.0.1 and localhost) and its key. */
  serverCertFile: string;
  serverKeyFile: string;
  /** A client certificate signed by the same CA, and its key (`tls_cert_file`, `tls_key_file`). */
  clientCertFile: string;
  clientKeyFile: string;
  /** A second CA that signed nothing here: trusting it must fail the handshake. */
  otherCaFile: string;
  /** Deletes the directory. */
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
  } catch (cause) {
    const stderr = (cause as { stderr?: Buffer }).stderr?.toString() ?? "";
    throw new Error(`openssl ${args[0]} failed (install Debian's openssl package if it is missing): ${stderr || String(cause)}`, {
      cause,
    });
  }
}

/**
 * Makes a throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate
 * with `openssl` in a temporary directory (EC P-256 keys, valid one day).
 */
export function createTestCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "egide-etcd-tls-"));
  try {
    for (const ca of ["ca", "other-ca"]) {
      openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${ca}.key`], dir);
      openssl(["req", "-x509", "-new", "-key", `${ca}.key`, "-subj", `/CN=egide test ${ca}`, "-days", "1", "-out", `${ca}.crt`], dir);
    }
    writeFileSync(join(dir, "server.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
    writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
    for (const leaf of ["server", "client"]) {
      openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${leaf}.key`], dir);
      openssl(["req", "-new", "-key", `${leaf}.key`, "-subj", `/CN=egide test ${leaf}`, "-out", `${leaf}.csr`], dir);
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${leaf}.csr`,
          "-CA",
          "ca.crt",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-days",
          "1",
          "-extfile",
          `${leaf}.ext`,
          "-out",
          `${leaf}.crt`,
        ],
        dir,
      );
    }
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    dir,
    caFile: join(dir, "ca.crt"),
    serverCertFile: join(dir, "server.crt"),
    serverKeyFile: join(dir, "server.key"),
    clientCertFile: join(dir, "client.crt"),
    clientKeyFile: join(dir, "client.key"),
    otherCaFile: join(dir, "other-ca.crt"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
