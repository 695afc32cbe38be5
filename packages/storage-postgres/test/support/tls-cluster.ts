import { execFile, execFileSync } from "node:child_process";
import {
  appendFileSync,
  chownSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freeLoopbackPort } from "@egide/test-postgres";

const run = promisify(execFile);

/** A PostgreSQL cluster with TLS, started for one test file and thrown away afterwards. */
export interface TlsCluster {
  /** The loopback port it listens on (only on 127.0.0.1). */
  port: number;
  /** The directory of its Unix socket, for a raw client that must not depend on TLS. */
  socketDir: string;
  /** PEM file of the CA that signed the server certificate. */
  caCertPath: string;
  /** PEM file of an unrelated CA, which must not be accepted as the server's issuer. */
  wrongCaCertPath: string;
  /** The one name the server certificate carries (`DNS:localhost`; no IP address). */
  certifiedHost: string;
  /** Stops the server at once and removes every file it had. Safe to call twice. */
  stop(): Promise<void>;
}

/** The highest installed PostgreSQL's `bin` directory (Debian puts each version apart). */
export function findPostgresBinaries(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((version) => existsSync(join(root, version, "bin", "initdb")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (versions.length === 0) {
    throw new Error(
      `No PostgreSQL server binaries under ${root}/*/bin (initdb, pg_ctl): install them with \`apt-get install -y postgresql\``,
    );
  }
  return join(root, versions[0]!, "bin");
}

/**
 * Initialises and starts a throwaway cluster as the `postgres` OS user (initdb refuses root) in
 * a temp directory, with `ssl = on` and a certificate chain generated here. pg_hba.conf lets
 * 127.0.0.1 in with or without TLS (trust), so both encrypted and plain-text clients can be
 * tested against the same server.
 */
export async function startTlsCluster(): Promise<TlsCluster> {
  const bin = findPostgresBinaries();
  const { uid, gid } = postgresUser();
  const dir = mkdtempSync(join(tmpdir(), "egide-tls-cluster-"));
  const dataDir = join(dir, "data");
  const tlsDir = join(dir, "tls");
  mkdirSync(tlsDir);
  chownSync(dir, uid, gid);

  let stopped = false;
  let started = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    process.off("exit", stopOnExit);
    if (started) {
      await asPostgres(join(bin, "pg_ctl"), ["-D", dataDir, "-m", "immediate", "-w", "stop"]).catch(() => undefined);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // A test process that dies without its afterAll must not leave a postmaster running.
  function stopOnExit(): void {
    if (stopped || !started) return;
    try {
      execFileSync("runuser", ["-u", "postgres", "--", join(bin, "pg_ctl"), "-D", dataDir, "-m", "immediate", "-w", "stop"], {
        stdio: "ignore",
      });
    } catch {
      // Best effort only: the process is exiting anyway.
    }
    rmSync(dir, { recursive: true, force: true });
  }
  process.on("exit", stopOnExit);

  try {
    await generateCertificates(tlsDir);
    for (const file of readdirSync(tlsDir)) chownSync(join(tlsDir, file), uid, gid);
    chownSync(tlsDir, uid, gid);
    // PostgreSQL refuses a private key that group or others can read.
    chmodSync(join(tlsDir, "server.key"), 0o600);

    await asPostgres(join(bin, "initdb"), [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "--auth=trust",
      "--no-sync",
      "--no-instructions",
      "-E",
      "UTF8",
      "--locale=C",
    ]);
    writeFileSync(
      join(dataDir, "pg_hba.conf"),
      [
        "local all all trust",
        "hostssl all all 127.0.0.1/32 trust",
        // Plain text too, for the `disable` case; TLS clients still match the line above.
        "host all all 127.0.0.1/32 trust",
        "",
      ].join("\n"),
    );

    // The port is picked free, then taken by the server a moment later; another process can win
    // that race, so a failed start is retried on a new port.
    let lastError: unknown;
    for (let attempt = 0; attempt < 3 && !started; attempt++) {
      const port = await freeLoopbackPort();
      appendFileSync(
        join(dataDir, "postgresql.conf"),
        [
          "",
          `port = ${port}`,
          "listen_addresses = '127.0.0.1'",
          `unix_socket_directories = '${dir}'`,
          "ssl = on",
          `ssl_cert_file = '${join(tlsDir, "server.crt")}'`,
          `ssl_key_file = '${join(tlsDir, "server.key")}'`,
          // Throwaway data: durability only costs time here.
          "fsync = off",
          "synchronous_commit = off",
          "full_page_writes = off",
          "",
        ].join("\n"),
      );
      try {
        await asPostgres(join(bin, "pg_ctl"), ["-D", dataDir, "-l", join(dir, "server.log"), "-w", "-t", "60", "start"]);
        started = true;
        return {
          port,
          socketDir: dir,
          caCertPath: join(tlsDir, "ca.crt"),
          wrongCaCertPath: join(tlsDir, "wrong-ca.crt"),
          certifiedHost: "localhost",
          stop,
        };
      } catch (error) {
        lastError = error;
      }
    }
    const log = existsSync(join(dir, "server.log")) ? readFileSync(join(dir, "server.log"), "utf8") : "(no log)";
    throw new Error(`the throwaway TLS cluster did not start: ${(lastError as Error)?.message}\n${log}`, { cause: lastError });
  } catch (error) {
    await stop();
    throw error;
  }
}

/**
 * A CA, a server certificate it signs for `DNS:localhost` only (so that 127.0.0.1 is a wrong
 * host name under verify-full), and an unrelated second CA. EC keys: fast to generate.
 */
async function generateCertificates(tlsDir: string): Promise<void> {
  const file = (name: string) => join(tlsDir, name);
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  // Our own config, so that the extensions are exactly these whatever the system openssl.cnf says.
  writeFileSync(
    file("openssl.cnf"),
    [
      "[req]",
      "distinguished_name = dn",
      "prompt = no",
      "[dn]",
      "CN = unused",
      "[ca]",
      "basicConstraints = critical, CA:TRUE",
      "keyUsage = critical, keyCertSign, cRLSign",
      "subjectKeyIdentifier = hash",
      "[server]",
      "basicConstraints = critical, CA:FALSE",
      "keyUsage = critical, digitalSignature, keyEncipherment",
      "extendedKeyUsage = serverAuth",
      "subjectAltName = DNS:localhost",
      "authorityKeyIdentifier = keyid",
      "",
    ].join("\n"),
  );
  const config = ["-config", file("openssl.cnf")];
  for (const [name, subject] of [
    ["ca", "/CN=Egide test CA"],
    ["wrong-ca", "/CN=Egide unrelated CA"],
  ] as const) {
    await run("openssl", [
      "req",
      ...config,
      "-x509",
      ...ecKey,
      "-keyout",
      file(`${name}.key`),
      "-out",
      file(`${name}.crt`),
      "-days",
      "2",
      "-subj",
      subject,
      "-extensions",
      "ca",
    ]);
  }
  await run("openssl", [
    "req",
    ...config,
    "-new",
    ...ecKey,
    "-keyout",
    file("server.key"),
    "-out",
    file("server.csr"),
    "-subj",
    "/CN=localhost",
  ]);
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    file("server.csr"),
    "-CA",
    file("ca.crt"),
    "-CAkey",
    file("ca.key"),
    "-set_serial",
    "1",
    "-days",
    "2",
    "-extfile",
    file("openssl.cnf"),
    "-extensions",
    "server",
    "-out",
    file("server.crt"),
  ]);
}

/** Runs a PostgreSQL program as the `postgres` OS user, with its output in the error. */
async function asPostgres(program: string, args: string[]): Promise<void> {
  try {
    await run("runuser", ["-u", "postgres", "--", program, ...args], { timeout: 90_000 });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${program} ${args.join(" ")} failed: ${stderr || stdout || (error as Error).message}`, { cause: error });
  }
}

function postgresUser(): { uid: number; gid: number } {
  try {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    return { uid, gid };
  } catch (cause) {
    throw new Error("the TLS test needs the `postgres` OS user (from the postgresql package) to run initdb", { cause });
  }
}
