#!/usr/bin/env node
// Proves that a user can install only what they need: packs every published package the way
// it is published, installs core + sqlite + crypto-envelope + metrics + storage-backup + server
// + cli into one empty project outside the workspace (with better-sqlite3, without pg) and
// core + postgres into another (with pg, without better-sqlite3), and uses each there: directly,
// through the backend registry and the encrypting barrier, the installed `egide-server --dev`
// (health, KV v2) and the installed `egide` CLI against it (status, kv get, an online backup).
// The PostgreSQL check creates and drops its own database on the machine's PostgreSQL
// (PGHOST/PGPORT/PGUSER, default 127.0.0.1:5432 as postgres).
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PNPM = ["-y", "pnpm@12.4.2"];
const packages = [
  "packages/storage-core",
  "packages/storage-sqlite",
  "packages/storage-postgres",
  "packages/crypto-envelope",
  "packages/storage-metrics",
  "packages/storage-backup",
  "apps/server",
  "apps/cli",
];
const work = mkdtempSync(join(tmpdir(), "egide-packed-"));
const keep = process.env.EGIDE_KEEP_TEMP === "1";

function run(command, args, cwd, env = {}) {
  return execFileSync(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
}

/**
 * An empty project outside the workspace, depending on the given tarballs (by package name)
 * and registry packages, installed with npm as a user would (scripts skipped; see below).
 */
function installProject(dirName, packageNames, registryPackages) {
  const project = join(work, dirName);
  mkdirSync(project);
  const dependencies = Object.fromEntries(packageNames.map((name) => [name, `file:${tarballs[name]}`]));
  const manifest = {
    name: `egide-packed-install-check-${dirName}`,
    private: true,
    type: "module",
    dependencies: { ...dependencies, ...registryPackages },
  };
  writeFileSync(join(project, "package.json"), JSON.stringify(manifest, null, 2));
  run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], project);
  check(!existsSync(join(project, "node_modules/@egide/storage-conformance")), "the conformance suite leaked into a user install");
  return project;
}

/** Check-script lines: put two keys through `direct`, list and read them back, close it. */
const DIRECT_USE = `await direct.put("app/config", Buffer.from("v1"));
await direct.put("app/db/password", Buffer.from("v2"));
const listed = await direct.list("app/");
const value = (await direct.get("app/config")).toString();
await direct.close();
if (JSON.stringify(listed) !== '["config","db/"]' || value !== "v1") throw new Error("direct use failed: " + JSON.stringify({ listed, value }));`;

/**
 * Runs the installed `egide-server --dev` (SQLite adapter only, no pg) on a free loopback
 * port, checks health and a KV write/read with the printed root token, and stops it.
 */
async function checkDevServer(project) {
  const bin = join(project, "node_modules/@egide/server/dist/bin/egide-server.js");
  const child = spawn(process.execPath, [bin, "--dev", "--dev-listen-address", "127.0.0.1:0"], {
    cwd: project,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (chunk) => (out += chunk));
  child.stderr.on("data", (chunk) => (out += chunk));
  const exited = new Promise((resolve) => child.on("exit", resolve));
  try {
    for (let i = 0; i < 150 && !/Root Token: \S+/.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 100));
    const url = /Api Address: (\S+)/.exec(out)?.[1];
    const token = /Root Token: (\S+)/.exec(out)?.[1];
    check(url && token, `the packed egide-server --dev did not start: ${out}`);
    const health = await (await fetch(`${url}/v1/sys/health`)).json();
    check(health.storage?.type === "sqlite" && health.storage.status === "healthy", `unexpected health: ${JSON.stringify(health)}`);
    const write = await fetch(`${url}/v1/secret/data/packed`, {
      method: "POST",
      headers: { "x-vault-token": token },
      body: JSON.stringify({ data: { ok: "yes" } }),
    });
    check(write.status === 200, `KV write answered ${write.status}`);
    const read = await (await fetch(`${url}/v1/secret/data/packed`, { headers: { "x-vault-token": token } })).json();
    check(read.data?.data?.ok === "yes", `KV read returned ${JSON.stringify(read)}`);
    // The installed `egide` CLI against it: status, a KV read, and an online backup.
    const egide = (args) =>
      execFileSync(process.execPath, [join(project, "node_modules/@egide/cli/dist/bin/egide.js"), ...args], {
        cwd: project,
        env: { ...process.env, EGIDE_ADDR: url, EGIDE_TOKEN: token, VAULT_ADDR: "", VAULT_TOKEN: "" },
        encoding: "utf8",
        stdio: ["ignore", "pipe", "pipe"],
      });
    check(/Sealed\s+false/.test(egide(["status"])), "egide status did not report an unsealed server");
    check(egide(["kv", "get", "--field", "ok", "secret/packed"]).trim() === "yes", "egide kv get did not read the secret");
    egide(["operator", "backup", "--output", join(project, "packed.enc")]);
    check(readFileSync(join(project, "packed.enc")).subarray(0, 8).toString() === "EGIDEBAK", "egide operator backup wrote no backup file");
    console.log(
      `packed install ok: egide-server --dev from the tarballs (SQLite adapter, no pg) answers health and KV v2 at ${url}; the egide CLI reads status and a secret and writes a backup`,
    );
  } finally {
    child.kill("SIGTERM");
    await exited;
  }
}

function check(condition, message) {
  if (!condition) throw new Error(`verify-packed-install: ${message}`);
}

const tarballs = {};
try {
  for (const name of packages) {
    const dir = join(root, name);
    check(existsSync(join(dir, "dist", "index.js")), `${name} is not built; run the build first`);
    run("npx", [...PNPM, "pack", "--pack-destination", work], dir);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(work).find(
      (f) => f.startsWith(`${manifest.name.replace("@", "").replace("/", "-")}-${manifest.version}`) && f.endsWith(".tgz"),
    );
    check(file, `no tarball for ${manifest.name}`);
    tarballs[manifest.name] = join(work, file);
    const listing = run("tar", ["-tzf", tarballs[manifest.name]], work).trim().split("\n");
    check(
      listing.every((entry) => /^package\/(dist\/|package\.json$|README\.md$|LICENSE$|CHANGELOG\.md$)/.test(entry)),
      `${file} ships files outside dist/: ${listing.join(", ")}`,
    );
    const packed = JSON.parse(run("tar", ["-xzOf", tarballs[manifest.name], "package/package.json"], work));
    check(!JSON.stringify(packed).includes("workspace:"), `${file} still has workspace: ranges`);
  }

  const betterSqlite = JSON.parse(readFileSync(join(root, "packages/storage-sqlite/node_modules/better-sqlite3/package.json"), "utf8"));
  const project = installProject(
    "app",
    [
      "@egide/storage-core",
      "@egide/storage-sqlite",
      "@egide/crypto-envelope",
      "@egide/storage-metrics",
      "@egide/storage-backup",
      "@egide/server",
      "@egide/cli",
    ],
    {
      "better-sqlite3": betterSqlite.version,
    },
  );
  // Install scripts were skipped, so the native addon the workspace already compiled for this
  // exact better-sqlite3 version is copied in: compiling the same sources again takes ~100 s.
  const addon = "build/Release/better_sqlite3.node";
  mkdirSync(join(project, "node_modules/better-sqlite3/build/Release"), { recursive: true });
  copyFileSync(
    join(root, "packages/storage-sqlite/node_modules/better-sqlite3", addon),
    join(project, "node_modules/better-sqlite3", addon),
  );
  check(!existsSync(join(project, "node_modules/pg")), "pg was installed, but the SQLite adapter must not need it");

  writeFileSync(
    join(project, "check.mjs"),
    `import { BackendRegistry, ConfigError } from "@egide/storage-core";
import { SHIPPED_STORAGE_PACKAGES } from "@egide/server";
import { SqliteBackend } from "@egide/storage-sqlite";
import { SealManager, barrier } from "@egide/crypto-envelope";
import { join } from "node:path";

const direct = SqliteBackend.open({ path: join(process.cwd(), "direct.db") });
${DIRECT_USE}

const registry = new BackendRegistry({ resolveFrom: process.cwd(), packages: SHIPPED_STORAGE_PACKAGES });
const definition = await registry.resolve("sqlite");
const backend = await definition.create(definition.parseConfig({ path: ":memory:" }));
await backend.put("a", Buffer.from("b"));
if ((await backend.get("a")).toString() !== "b") throw new Error("registry-created backend failed");
await backend.close();

const missing = await registry.resolve("postgresql").catch((e) => e);
if (!ConfigError.isInstance(missing) || missing.code !== "BACKEND_NOT_INSTALLED" || !missing.message.includes("npm install @egide/storage-postgres")) throw new Error("expected BACKEND_NOT_INSTALLED naming @egide/storage-postgres, got " + missing);

// The barrier from its own tarball, over the SQLite adapter: 2-of-3 shares, a value that
// reads back through the barrier and is not in the raw record.
const raw = SqliteBackend.open({ path: ":memory:" });
const seal = await SealManager.open(raw);
const { shares } = await seal.initialize({ shares: 3, threshold: 2 });
await seal.unseal(shares[0].toString("base64"));
await seal.unseal(shares[2].toString("hex"));
const encrypted = barrier(raw, seal);
await encrypted.put("secret/app", Buffer.from("packed-plaintext"));
const stored = await raw.get("secret/app");
if ((await encrypted.get("secret/app")).toString() !== "packed-plaintext" || stored.includes("packed-plaintext")) throw new Error("barrier failed");
seal.seal();
await encrypted.close();
console.log("packed install ok: put/get/list direct and via the registry; the barrier encrypts over SQLite; postgresql reported as not installed: " + missing.message);
`,
  );
  process.stdout.write(run("node", ["check.mjs"], project));
  await checkDevServer(project);

  // A second project with only the PostgreSQL adapter: pg is a peer dependency the user adds.
  const pgVersion = JSON.parse(readFileSync(join(root, "packages/storage-postgres/node_modules/pg/package.json"), "utf8")).version;
  const pgProject = installProject("pg-app", ["@egide/storage-core", "@egide/storage-postgres"], { pg: pgVersion });
  check(existsSync(join(pgProject, "node_modules/pg/package.json")), "pg is missing from the PostgreSQL project");
  check(
    !existsSync(join(pgProject, "node_modules/better-sqlite3")),
    "better-sqlite3 was installed, but the PostgreSQL adapter must not need it",
  );
  check(!existsSync(join(pgProject, "node_modules/@egide/storage-sqlite")), "@egide/storage-sqlite leaked into the PostgreSQL install");

  writeFileSync(
    join(pgProject, "check.mjs"),
    `import { randomBytes } from "node:crypto";
import pg from "pg";
import { BackendRegistry, ConfigError } from "@egide/storage-core";
import { PostgresBackend } from "@egide/storage-postgres";

const server = {
  host: process.env.PGHOST || "127.0.0.1",
  port: Number(process.env.PGPORT || 5432),
  user: process.env.PGUSER || "postgres",
  password: process.env.PGPASSWORD || undefined,
};
const name = "egide_packed_" + randomBytes(4).toString("hex");

async function admin(text) {
  const client = new pg.Client({ ...server, database: "postgres", connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (error) {
    throw new Error("PostgreSQL is required by the packed-install check but is not reachable at " + server.host + ":" + server.port +
      " (" + error.message + "). Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start");
  }
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

await admin('CREATE DATABASE "' + name + '"');
try {
  const connection = { host: server.host, port: server.port, database: name, username: server.user, password: server.password, poolMin: 0, poolMax: 2 };
  const direct = await PostgresBackend.open(connection);
${DIRECT_USE}

  // storage-core names no adapter: the PostgreSQL package is not @egide/storage-<type>, so it is mapped.
  const registry = new BackendRegistry({ resolveFrom: process.cwd(), packages: { postgresql: "@egide/storage-postgres" } });
  const definition = await registry.resolve("postgresql");
  const env = server.password === undefined ? {} : { EGIDE_PACKED_PG_PASSWORD: server.password };
  const backend = await definition.create(
    definition.parseConfig(
      {
        host: server.host,
        port: server.port,
        database: name,
        username: server.user,
        ...(server.password === undefined ? {} : { password_env: "EGIDE_PACKED_PG_PASSWORD" }),
        pool_min: 0,
        pool_max: 2,
        ssl_mode: "disable",
      },
      env,
    ),
  );
  if ((await backend.get("app/db/password")).toString() !== "v2") throw new Error("registry-created backend does not see the direct backend's data");
  await backend.put("a", Buffer.from("b"));
  if ((await backend.get("a")).toString() !== "b") throw new Error("registry-created backend failed");
  await backend.close();

  const missing = await registry.resolve("sqlite").catch((e) => e);
  if (!ConfigError.isInstance(missing) || missing.code !== "BACKEND_NOT_INSTALLED" || !missing.message.includes("npm install @egide/storage-sqlite")) throw new Error("expected BACKEND_NOT_INSTALLED for sqlite (by convention), got " + missing);
  console.log("packed install ok (postgresql): put/get/list direct and via the registry; sqlite reported as not installed: " + missing.message);
} finally {
  await admin('DROP DATABASE IF EXISTS "' + name + '" WITH (FORCE)');
}
`,
  );
  process.stdout.write(run("node", ["check.mjs"], pgProject));
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
