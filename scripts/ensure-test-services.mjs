#!/usr/bin/env node
// Sets up what the test suite needs before it runs, from what this machine has: PostgreSQL on
// PGHOST:PGPORT (default 127.0.0.1:5432, user postgres, trust authentication) and the
// `pgbouncer`, `openssl` and `etcd` (Debian's etcd-server) binaries. What is missing is started or installed when that is
// possible (a Debian machine, as root or with sudo); otherwise this fails with one line saying
// what to install. Run by `pnpm test` before anything else, so the README's test command works
// on a fresh machine by itself; `.ci/run` calls that same command.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { createConnection } from "node:net";
import { delimiter, join } from "node:path";

const host = process.env.PGHOST || "127.0.0.1";
const port = Number(process.env.PGPORT || 5432);

function fail(message) {
  process.stderr.write(`ensure-test-services: ${message}\n`);
  process.exit(1);
}

function log(message) {
  process.stdout.write(`ensure-test-services: ${message}\n`);
}

/** The path of `name` on PATH or in the sbin directories Debian uses, or undefined. */
function binary(name) {
  const dirs = [...(process.env.PATH ?? "").split(delimiter).filter(Boolean), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  for (const dir of dirs) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

/** How to run a command as root here: directly, through sudo, or not at all. */
function rootPrefix() {
  if (process.getuid?.() === 0) return [];
  if (binary("sudo") && spawnSync("sudo", ["-n", "true"], { stdio: "ignore" }).status === 0) return ["sudo", "-n"];
  return undefined;
}

let aptUpdated = false;
/** Installs Debian packages, or returns false when this machine cannot. */
function aptInstall(packages) {
  const prefix = rootPrefix();
  if (prefix === undefined || !binary("apt-get")) return false;
  const run = (args) => {
    const [command, ...rest] = [...prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", ...args];
    return spawnSync(command, rest, { stdio: ["ignore", "ignore", "inherit"] }).status === 0;
  };
  if (!aptUpdated) {
    log("apt-get update");
    if (!run(["update", "-qq"])) return false;
    aptUpdated = true;
  }
  log(`installing ${packages.join(", ")}`);
  return run(["install", "-y", "-qq", ...packages]);
}

function reachable() {
  return new Promise((resolve) => {
    const socket = createConnection({ host, port });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(2000, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

async function ensurePostgres() {
  if (await reachable()) return;
  if (host !== "127.0.0.1" && host !== "localhost" && host !== "::1")
    fail(`PostgreSQL is not reachable at ${host}:${port} (PGHOST/PGPORT); start it and run the tests again`);
  if (!binary("pg_ctlcluster")) {
    if (!aptInstall(["postgresql"]))
      fail(
        `PostgreSQL is not running on ${host}:${port} and cannot be installed here: install PostgreSQL 15 (trust authentication for postgres on 127.0.0.1) and run the tests again`,
      );
  }
  const prefix = rootPrefix();
  if (prefix === undefined)
    fail(
      `PostgreSQL is installed but not running on ${host}:${port}, and starting it needs root: start it (pg_ctlcluster <version> main start) and run the tests again`,
    );
  for (const version of existsSync("/etc/postgresql") ? readdirSync("/etc/postgresql") : []) {
    const hba = `/etc/postgresql/${version}/main/pg_hba.conf`;
    // A fresh Debian cluster asks for passwords over TCP; the tests connect as postgres with trust.
    if (existsSync(hba) && spawnSync("grep", ["-q", "egide-test-trust", hba]).status !== 0) {
      const [command, ...rest] = [
        ...prefix,
        "sed",
        "-i",
        "1i host all all 127.0.0.1/32 trust # egide-test-trust\\nhost all all ::1/128 trust # egide-test-trust",
        hba,
      ];
      spawnSync(command, rest, { stdio: "ignore" });
    }
    log(`starting PostgreSQL ${version}`);
    const [command, ...rest] = [...prefix, "pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"];
    spawnSync(command, rest, { stdio: "ignore" });
  }
  for (let i = 0; i < 30; i++) {
    if (await reachable()) return;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  fail(`PostgreSQL did not come up on ${host}:${port}: check its log (/var/log/postgresql) and run the tests again`);
}

function ensureBinary(name, debianPackage) {
  if (binary(name)) return;
  if (!aptInstall([debianPackage]) || !binary(name))
    fail(`the tests need the ${name} binary: install it (Debian: apt-get install ${debianPackage}) and run the tests again`);
}

await ensurePostgres();
ensureBinary("pgbouncer", "pgbouncer");
ensureBinary("openssl", "openssl");
// @egide/storage-etcd's tests start their own etcd members on loopback ports.
ensureBinary("etcd", "etcd-server");
try {
  execFileSync(binary("pgbouncer"), ["--version"], { stdio: "ignore" });
} catch {
  fail("the pgbouncer binary does not run: reinstall it (Debian: apt-get install --reinstall pgbouncer)");
}
log(`PostgreSQL on ${host}:${port}, pgbouncer, openssl and etcd are ready`);
