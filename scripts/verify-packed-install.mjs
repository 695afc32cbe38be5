#!/usr/bin/env node
// Proves that a user can install only what they need: packs @egide/storage-core and
// @egide/storage-sqlite the way they are published, installs the tarballs into an empty
// project outside the workspace (with better-sqlite3, without pg), and uses them there,
// both directly and through the backend registry.
import { execFileSync } from "node:child_process";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PNPM = ["-y", "pnpm@12.4.2"];
const packages = ["storage-core", "storage-sqlite"];
const work = mkdtempSync(join(tmpdir(), "egide-packed-"));
const keep = process.env.EGIDE_KEEP_TEMP === "1";

function run(command, args, cwd, env = {}) {
  return execFileSync(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], encoding: "utf8" });
}

function check(condition, message) {
  if (!condition) throw new Error(`verify-packed-install: ${message}`);
}

try {
  const tarballs = {};
  for (const name of packages) {
    const dir = join(root, "packages", name);
    check(existsSync(join(dir, "dist", "index.js")), `packages/${name} is not built; run the build first`);
    run("npx", [...PNPM, "pack", "--pack-destination", work], dir);
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const file = readdirSync(work).find((f) => f.startsWith(manifest.name.replace("@", "").replace("/", "-")) && f.endsWith(".tgz"));
    check(file, `no tarball for ${manifest.name}`);
    tarballs[manifest.name] = join(work, file);
    const listing = run("tar", ["-tzf", tarballs[manifest.name]], work).trim().split("\n");
    check(listing.every((entry) => /^package\/(dist\/|package\.json$|README\.md$|LICENSE$|CHANGELOG\.md$)/.test(entry)), `${file} ships files outside dist/: ${listing.join(", ")}`);
    const packed = JSON.parse(run("tar", ["-xzOf", tarballs[manifest.name], "package/package.json"], work));
    check(!JSON.stringify(packed).includes("workspace:"), `${file} still has workspace: ranges`);
  }

  const project = join(work, "app");
  mkdirSync(project);
  const betterSqlite = JSON.parse(readFileSync(join(root, "packages/storage-sqlite/node_modules/better-sqlite3/package.json"), "utf8"));
  writeFileSync(
    join(project, "package.json"),
    JSON.stringify(
      {
        name: "egide-packed-install-check",
        private: true,
        type: "module",
        dependencies: {
          "@egide/storage-core": `file:${tarballs["@egide/storage-core"]}`,
          "@egide/storage-sqlite": `file:${tarballs["@egide/storage-sqlite"]}`,
          "better-sqlite3": betterSqlite.version,
        },
      },
      null,
      2,
    ),
  );
  // Scripts are skipped and the native addon the workspace already compiled for this exact
  // better-sqlite3 version is copied in: compiling the same sources again takes ~100 s here.
  run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], project);
  const addon = "build/Release/better_sqlite3.node";
  mkdirSync(join(project, "node_modules/better-sqlite3/build/Release"), { recursive: true });
  copyFileSync(join(root, "packages/storage-sqlite/node_modules/better-sqlite3", addon), join(project, "node_modules/better-sqlite3", addon));
  check(!existsSync(join(project, "node_modules/pg")), "pg was installed, but the SQLite adapter must not need it");
  check(!existsSync(join(project, "node_modules/@egide/storage-conformance")), "the conformance suite leaked into a user install");

  writeFileSync(
    join(project, "check.mjs"),
    `import { BackendRegistry, ConfigError } from "@egide/storage-core";
import { SqliteBackend } from "@egide/storage-sqlite";
import { join } from "node:path";

const direct = SqliteBackend.open({ path: join(process.cwd(), "direct.db") });
await direct.put("app/config", Buffer.from("v1"));
await direct.put("app/db/password", Buffer.from("v2"));
const listed = await direct.list("app/");
const value = (await direct.get("app/config")).toString();
await direct.close();
if (JSON.stringify(listed) !== '["config","db/"]' || value !== "v1") throw new Error("direct use failed: " + JSON.stringify({ listed, value }));

const registry = new BackendRegistry({ resolveFrom: process.cwd() });
const definition = await registry.resolve("sqlite");
const backend = await definition.create(definition.parseConfig({ path: ":memory:" }));
await backend.put("a", Buffer.from("b"));
if ((await backend.get("a")).toString() !== "b") throw new Error("registry-created backend failed");
await backend.close();

const missing = await registry.resolve("postgresql").catch((e) => e);
if (!ConfigError.isInstance(missing) || missing.code !== "BACKEND_NOT_INSTALLED") throw new Error("expected BACKEND_NOT_INSTALLED, got " + missing);
console.log("packed install ok: put/get/list direct and via the registry; postgresql reported as not installed: " + missing.message);
`,
  );
  process.stdout.write(run("node", ["check.mjs"], project));
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
