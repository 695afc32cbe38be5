import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** A certificate file and its private key file. */
export interface CertificateFiles {
  certFile: string;
  keyFile: string;
}

/** Whom the certificate names. */
export interface CertificateNames {
  /** Default: `127.0.0.1`. */
  commonName?: string;
  /** The `subjectAltName` extension. Default: `IP:127.0.0.1`. */
  subjectAltName?: string;
}

/**
 * Writes a throwaway self-signed P-256 certificate (valid one day; for 127.0.0.1 unless `names`
 * say otherwise) and its key into `dir` as `tls.crt` and `tls.key`, with the machine's `openssl`.
 */
export function selfSignedCertificate(dir: string, names: CertificateNames = {}): CertificateFiles {
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
      `/CN=${names.commonName ?? "127.0.0.1"}`,
      "-addext",
      `subjectAltName=${names.subjectAltName ?? "IP:127.0.0.1"}`,
      "-keyout",
      keyFile,
      "-out",
      certFile,
    ],
    { stdio: "ignore" },
  );
  return { certFile, keyFile };
}
