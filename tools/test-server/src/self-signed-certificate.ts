import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** A certificate file and its private key file. */
export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/**
 * Writes a throwaway self-signed P-256 certificate for 127.0.0.1 (valid one day) and its key into
 * `dir` as `tls.crt` and `tls.key`, with the machine's `openssl`.
 */
export function selfSignedCertificate(dir: string): CertificateFiles {
  const certFile = join(dir, "tls.crt");
  const keyFile = join(dir, "tls.key");
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-days",
      "1",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile };
}
