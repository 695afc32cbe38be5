#!/usr/bin/env node
// Usage: node scripts/verify-template-path.mjs   (after the workspace is built; EGIDE_KEEP_TEMP=1 keeps the temp dirs)
//
// Proves the contributor's path for a new storage backend, outside the workspace, from packed
// tarballs: storage-core and storage-conformance packed with pnpm; a new adapter made with
// scripts/create-storage-backend.mjs and installed with npm;
//   (a) the unmodified template builds and typechecks, and its conformance run fails, every
//       failure coming from a member left to write (a NotImplementedError, read from vitest's
//       JSON report and from the error causes, which that report leaves out);
//   (b) with the stubs replaced by templates/storage-backend-fixture (a complete in-memory
//       adapter), it builds and passes the whole suite, every test of (a) included;
//   (c) packed with npm pack, it runs under the packed egide-server (no SQLite or PostgreSQL
//       adapter installed) from `[storage] type = "memkv"`, and a second copy named
//       @acme/egide-memkv (type "acmekv", outside both naming conventions) from
//       `[storage] package = "…"`, which is refused without it: init, unseal, health, a KV v2
//       write and read, and the adapter's audit rows.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { copyFilled, placeholderValues } from "./create-storage-backend.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const PNPM = ["-y", "pnpm@12.4.2"];
const CREATE = join(root, "scripts", "create-storage-backend.mjs");
const FIXTURE = join(root, "templates", "storage-backend-fixture");
const NOT_IMPLEMENTED = "NotImplementedError";
const PLACEHOLDERS = ["__TYPE__", "__Type__", "__CONST__", "__PACKAGE__", "__STORAGE_"];
const exec = promisify(execFile);
const keep = process.env.EGIDE_KEEP_TEMP === "1";
const work = mkdtempSync(join(tmpdir(), "egide-template-path-"));
const started = Date.now();
const summary = [];

function check(condition, message) {
  if (!condition) throw new Error(`verify-template-path: ${message}`);
}

function seconds(since) {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** Runs a command to completion; resolves to { code, stdout, stderr } whatever the exit code. */
async function run(command, args, cwd, { allowFailure = false, env = {} } = {}) {
  try {
    const { stdout, stderr } = await exec(command, args, {
      cwd,
      env: { ...process.env, ...env },
      encoding: "utf8",
      maxBuffer: 64 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (typeof error.code !== "number") throw error;
    const result = { code: error.code, stdout: error.stdout ?? "", stderr: error.stderr ?? "" };
    if (!allowFailure) {
      throw new Error(
        `verify-template-path: \`${command} ${args.join(" ")}\` in ${cwd} exited with ${result.code}\n${result.stdout.slice(-4000)}\n${result.stderr.slice(-4000)}`,
      );
    }
    return result;
  }
}

/** The workspace packages by name (packages/*, apps/*), with their directories and manifests. */
function workspacePackages() {
  const found = new Map();
  for (const group of ["packages", "apps"]) {
    for (const name of readdirSync(join(root, group))) {
      const file = join(root, group, name, "package.json");
      if (!existsSync(file)) continue;
      const manifest = JSON.parse(readFileSync(file, "utf8"));
      found.set(manifest.name, { dir: join(root, group, name), manifest });
    }
  }
  return found;
}

/** `start` and the @egide packages it depends on (dependencies only: what npm installs for a user), transitively. */
function egideClosure(all, start) {
  const seen = new Set();
  const visit = (name) => {
    if (seen.has(name)) return;
    const entry = all.get(name);
    check(entry, `${name} is not a package of this workspace`);
    seen.add(name);
    for (const dependency of Object.keys(entry.manifest.dependencies ?? {})) if (dependency.startsWith("@egide/")) visit(dependency);
  };
  visit(start);
  return [...seen];
}

/** Packs each package with pnpm (workspace ranges rewritten, as published); resolves to name → tarball path. */
async function packWorkspace(all, names) {
  const tarballs = {};
  await Promise.all(
    names.map(async (name) => {
      const { dir } = all.get(name);
      check(existsSync(join(dir, "dist", "index.js")), `${name} is not built; run the build first`);
      const destination = join(work, "tarballs", name.replace("@", "").replace("/", "-"));
      mkdirSync(destination, { recursive: true });
      await run("npx", [...PNPM, "pack", "--pack-destination", destination], dir);
      const [file] = readdirSync(destination).filter((f) => f.endsWith(".tgz"));
      check(file, `pnpm pack wrote no tarball for ${name}`);
      tarballs[name] = join(destination, file);
    }),
  );
  return tarballs;
}

/** Every file below `dir` (node_modules and dist left out). */
function sourceFiles(dir) {
  const files = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === "node_modules" || entry.name === "dist") continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...sourceFiles(path));
    else files.push(path);
  }
  return files;
}

// A vitest reporter that keeps what the JSON reporter drops: each error's `cause` chain (a
// fast-check failure wraps the backend's error), and the errors outside any test.
const CAUSE_REPORTER = `import { writeFileSync } from "node:fs";
const chain = (error) => {
  const links = [];
  for (let e = error, i = 0; e && i < 8; e = e.cause, i++) links.push({ name: String(e.name ?? ""), message: String(e.message ?? e) });
  return links;
};
export default class CauseReporter {
  onTestRunEnd(modules, unhandledErrors) {
    const tests = [];
    for (const module of modules) {
      for (const test of module.children.allTests()) {
        const result = test.result();
        tests.push({ name: test.fullName, title: test.name, state: result.state, errors: (result.errors ?? []).map(chain) });
      }
    }
    writeFileSync(process.env.EGIDE_CAUSE_REPORT, JSON.stringify({ tests, unhandled: unhandledErrors.map(chain) }));
  }
}
`;

/** Runs the adapter's `npm test` with the JSON and cause reporters; resolves to both reports and the exit code. */
async function runSuite(project, label) {
  const json = join(work, `${label}-results.json`);
  const causes = join(work, `${label}-causes.json`);
  const result = await run(
    "npm",
    ["test", "--", "--reporter=dot", "--reporter=json", `--outputFile.json=${json}`, `--reporter=${join(work, "cause-reporter.mjs")}`],
    project,
    { allowFailure: true, env: { EGIDE_CAUSE_REPORT: causes, CI: "true", NO_COLOR: "1" } },
  );
  check(existsSync(json) && existsSync(causes), `the ${label} run wrote no report (exit ${result.code}):\n${result.stderr.slice(-4000)}`);
  const report = JSON.parse(readFileSync(json, "utf8"));
  for (const file of report.testResults) {
    check(file.assertionResults.length > 0, `${relative(project, file.name)} ran no test in the ${label} run: ${file.message}`);
  }
  return { code: result.code, report, causes: JSON.parse(readFileSync(causes, "utf8")), output: result.stdout + result.stderr };
}

/**
 * How a failure of the unmodified template relates to a NotImplementedError: "thrown" when one is
 * in the error's cause chain (vitest may rename a cause "Caused by: NotImplementedError"),
 * "asserted" when an assertion received one and quotes it (`expected NotImplementedError: memkv:
 * TODO: write … to be CallerError`), null otherwise.
 */
function notImplementedKind(links, type) {
  if (links.some((link) => link.name.endsWith(NOT_IMPLEMENTED))) return "thrown";
  if (links.some((link) => link.message.includes(`${type}: TODO: write `))) return "asserted";
  return null;
}

/** The member a NotImplementedError names ("MemkvBackend.get()"), from its message. */
function notImplementedMember(message) {
  const marker = "TODO: write ";
  const at = message.indexOf(marker);
  if (at === -1) return null;
  const rest = message.slice(at + marker.length);
  const end = rest.indexOf(": not implemented");
  return end === -1 ? null : rest.slice(0, end);
}

/** (a): the unmodified template's run fails, and only on members left to write. */
function checkTemplateRun({ code, report, causes, output }, type) {
  check(code !== 0, "the unmodified template's conformance run passed; its stubs must fail");
  check(report.numTotalTests > 100, `the template ran only ${report.numTotalTests} tests`);
  check(report.numFailedTests > 0, "no test failed in the unmodified template");
  check(causes.tests.length === report.numTotalTests, "the JSON and cause reports disagree on the number of tests");
  const failed = causes.tests.filter((test) => test.state === "failed");
  check(failed.length === report.numFailedTests, "the JSON and cause reports disagree on the failures");
  const members = new Set();
  const kinds = { thrown: 0, asserted: 0 };
  const unexplained = [];
  for (const test of failed) {
    const found = test.errors.map((links) => notImplementedKind(links, type));
    if (test.errors.length > 0 && found.every((kind) => kind !== null)) {
      kinds[found.includes("asserted") ? "asserted" : "thrown"] += 1;
      for (const links of test.errors) for (const link of links) members.add(notImplementedMember(link.message));
    } else {
      const shown = test.errors.map((links) => links.map((l) => `${l.name}: ${l.message.slice(0, 300)}`).join(" <- ")).join("; ");
      unexplained.push(`${test.name}: ${shown}`);
    }
  }
  check(unexplained.length === 0, `failures of the unmodified template that are not a NotImplementedError:\n  ${unexplained.join("\n  ")}`);
  const strays = causes.unhandled.filter((links) => notImplementedKind(links, type) !== "thrown");
  check(
    strays.length === 0,
    `errors outside the tests that are not a NotImplementedError: ${JSON.stringify(strays).slice(0, 2000)}\n${output.slice(-2000)}`,
  );
  members.delete(null);
  return {
    passed: report.numPassedTests,
    failed: failed.length,
    ...kinds,
    unhandled: causes.unhandled.length,
    members: [...members].sort(),
  };
}

/** The adapter project for `type`, made with the create script as a contributor would. */
async function createAdapter(type, dir, packageName) {
  const args = [CREATE, type, "--dir", dir, ...(packageName ? ["--package", packageName] : [])];
  await run(process.execPath, args, work);
  const leftovers = sourceFiles(dir).filter((file) => PLACEHOLDERS.some((p) => readFileSync(file, "utf8").includes(p) || file.includes(p)));
  check(leftovers.length === 0, `placeholders left in ${leftovers.join(", ")}`);
  return dir;
}

/** Lays the finished in-memory adapter over the stubs, for `type`; the stubs' helper must no longer be needed. */
function finishAdapter(dir, type, packageName) {
  copyFilled(join(FIXTURE, "src"), join(dir, "src"), placeholderValues(type, packageName));
  rmSync(join(dir, "src", "not-implemented.ts"));
  // Outputs of deleted sources would otherwise stay in dist/ and ship.
  rmSync(join(dir, "dist"), { recursive: true, force: true });
  for (const file of readdirSync(dir)) if (file.endsWith(".tsbuildinfo")) rmSync(join(dir, file));
}

/** `npm pack` (its prepack builds); checks the tarball holds only dist/, package.json and README.md. */
async function npmPack(dir) {
  const destination = join(work, "tarballs");
  const { stdout } = await run("npm", ["pack", "--pack-destination", destination, "--json", "--loglevel=error"], dir);
  const [packed] = JSON.parse(stdout);
  const paths = packed.files.map((f) => f.path);
  const stray = paths.filter((path) => !(path.startsWith("dist/") || path === "package.json" || path === "README.md"));
  check(stray.length === 0, `${packed.name} ships files outside dist/: ${stray.join(", ")}`);
  check(!paths.some((path) => path.includes("not-implemented")), `${packed.name} still ships the template's stubs`);
  check(paths.includes("dist/index.js") && paths.includes("dist/index.d.ts"), `${packed.name} ships no dist/index.js`);
  return join(destination, packed.filename);
}

/**
 * Starts the packed egide-server with `config`; resolves once it listens, to its URL, a stop()
 * that resolves to the exit code, and the output so far.
 */
async function startServer(project, name, config) {
  const file = join(project, `${name}.toml`);
  writeFileSync(file, config);
  const bin = join(project, "node_modules", "@egide", "server", "dist", "bin", "egide-server.js");
  const child = spawn(process.execPath, [bin, "--config", file], { cwd: project, stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  child.stdout.on("data", (chunk) => (output += chunk));
  child.stderr.on("data", (chunk) => (output += chunk));
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve(code ?? signal)));
  let exitCode;
  void exited.then((code) => (exitCode = code));
  const marker = "Egide listening on ";
  for (let i = 0; i < 300 && exitCode === undefined && !output.includes(marker); i++) await new Promise((r) => setTimeout(r, 50));
  const stop = async () => {
    if (exitCode === undefined) child.kill("SIGTERM");
    return exited;
  };
  if (!output.includes(marker)) {
    if (exitCode === undefined) child.kill("SIGKILL");
    return { url: undefined, stop, exit: await exited, output: () => output };
  }
  const rest = output.slice(output.indexOf(marker) + marker.length);
  return { url: rest.slice(0, rest.indexOf(" ")), stop, exit: undefined, output: () => output };
}

/** A Vault API call; resolves to { status, body }. */
async function call(url, method, path, { token, body } = {}) {
  const response = await fetch(`${url}${path}`, {
    method,
    headers: { ...(token ? { "x-vault-token": token } : {}), ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(10_000),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}

/** Runs the packed server on `storage` (TOML lines of [storage]): init, unseal, health, KV v2 and the audit log. */
async function serveOn(project, name, type, storage) {
  const server = await startServer(project, name, `${storage}\n\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`);
  check(server.url, `egide-server (${name}) did not start (exit ${server.exit}):\n${server.output()}`);
  let checked = false;
  try {
    const init = await call(server.url, "PUT", "/v1/sys/init", { body: { secret_shares: 1, secret_threshold: 1 } });
    check(init.status === 200 && init.body.root_token && init.body.keys_base64?.length === 1, `init answered ${init.status}`);
    const unseal = await call(server.url, "PUT", "/v1/sys/unseal", { body: { key: init.body.keys_base64[0] } });
    check(unseal.status === 200 && unseal.body.sealed === false, `unseal answered ${unseal.status}: ${JSON.stringify(unseal.body)}`);
    const health = await call(server.url, "GET", "/v1/sys/health");
    check(
      health.status === 200 && health.body.storage?.type === type && health.body.storage.status === "healthy",
      `health answered ${health.status}: ${JSON.stringify(health.body)}`,
    );
    const token = init.body.root_token;
    const write = await call(server.url, "POST", "/v1/secret/data/template-path", { token, body: { data: { adapter: type } } });
    check(write.status === 200, `KV write answered ${write.status}: ${JSON.stringify(write.body)}`);
    const read = await call(server.url, "GET", "/v1/secret/data/template-path", { token });
    check(read.status === 200 && read.body.data?.data?.adapter === type, `KV read answered ${read.status}: ${JSON.stringify(read.body)}`);
    const audit = await call(server.url, "GET", "/v1/sys/audit-log?path_prefix=secret/data/template-path", { token });
    const rows = audit.body?.data?.entries ?? [];
    check(audit.status === 200 && rows.length >= 2, `the adapter's audit log holds ${rows.length} rows for the KV calls (${audit.status})`);
    checked = true;
    return `${server.url}: health ${health.body.storage.status}, KV v2 write+read, ${rows.length} audit rows`;
  } finally {
    const code = await server.stop();
    // After a failed check, that failure is the one to report.
    if (checked) check(code === 0, `egide-server (${name}) exited with ${code} after SIGTERM:\n${server.output()}`);
  }
}

try {
  let since = Date.now();
  const all = workspacePackages();
  const serverPackages = egideClosure(all, "@egide/server");
  for (const forbidden of ["@egide/storage-sqlite", "@egide/storage-postgres"]) {
    check(!serverPackages.includes(forbidden), `the server depends on ${forbidden}; it must stay an optional peer`);
  }
  const tarballs = await packWorkspace(all, [...new Set(["@egide/storage-core", "@egide/storage-conformance", ...serverPackages])]);
  summary.push(`packed ${Object.keys(tarballs).sort().join(", ")} (${seconds(since)})`);
  writeFileSync(join(work, "cause-reporter.mjs"), CAUSE_REPORTER);

  // The create script refuses a bad type and a non-empty target.
  since = Date.now();
  for (const [args, why] of [
    [["Memkv"], "an upper-case type"],
    [["9kv"], "a type starting with a digit"],
    [["mem_kv"], "an underscore"],
  ]) {
    const refused = await run(process.execPath, [CREATE, ...args, "--dir", join(work, "refused")], work, { allowFailure: true });
    check(refused.code !== 0 && !existsSync(join(work, "refused")), `create-storage-backend accepted ${why}`);
  }

  // (a) The unmodified template, installed from the tarballs.
  const project = await createAdapter("memkv", join(work, "egide-storage-memkv"));
  const again = await run(process.execPath, [CREATE, "memkv", "--dir", project], work, { allowFailure: true });
  check(again.code !== 0, "create-storage-backend wrote into a non-empty directory");
  const manifestPath = join(project, "package.json");
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  check(manifest.name === "egide-storage-memkv" && manifest.peerDependencies["@egide/storage-core"], "unexpected template manifest");
  for (const name of ["@egide/storage-core", "@egide/storage-conformance"]) {
    check(manifest.devDependencies[name], `the template has no dev dependency on ${name}`);
    manifest.devDependencies[name] = `file:${tarballs[name]}`;
  }
  writeFileSync(manifestPath, `${JSON.stringify(manifest, null, 2)}\n`);
  await run("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"], project);
  await run("npm", ["run", "typecheck"], project);
  const template = checkTemplateRun(await runSuite(project, "template"), "memkv");
  summary.push(
    `(a) the unmodified template builds and typechecks; its suite ran ${template.passed + template.failed} tests: ${template.passed} pass, ` +
      `${template.failed} fail: ${template.thrown} with a NotImplementedError thrown, ${template.asserted} with an assertion that received one, ` +
      `${template.unhandled} NotImplementedErrors outside tests, no other error. Members named: ${template.members.join(", ")} (${seconds(since)})`,
  );

  // (b) The finished in-memory adapter: the whole suite passes.
  since = Date.now();
  finishAdapter(project, "memkv");
  await run("npm", ["run", "typecheck"], project);
  const finished = await runSuite(project, "fixture");
  const { report } = finished;
  check(
    finished.code === 0 && report.success && report.numFailedTests === 0 && report.numPendingTests === 0 && report.numTodoTests === 0,
    `the finished adapter's suite did not pass: ${report.numFailedTests} failed, ${report.numPendingTests} skipped\n  ${finished.causes.tests
      .filter((test) => test.state !== "passed")
      .map((test) => `${test.name} (${test.state}): ${test.errors.map((links) => links[0]?.message.slice(0, 500)).join("; ")}`)
      .join("\n  ")}\n${finished.output.slice(-3000)}`,
  );
  check(
    report.numPassedTests === template.passed + template.failed,
    `the finished adapter ran ${report.numPassedTests} tests, the template ${template.passed + template.failed}`,
  );
  summary.push(`(b) the finished in-memory adapter passes all ${report.numPassedTests} tests (${seconds(since)})`);

  // (c) Packed, under the packed server: by convention, and by [storage] package.
  since = Date.now();
  const memkvTarball = await npmPack(project);
  const acme = await createAdapter("acmekv", join(work, "acme-memkv"), "@acme/egide-memkv");
  finishAdapter(acme, "acmekv", "@acme/egide-memkv");
  symlinkSync(join(project, "node_modules"), join(acme, "node_modules"), "dir");
  const acmeTarball = await npmPack(acme);
  const app = join(work, "app");
  mkdirSync(app);
  const dependencies = Object.fromEntries(serverPackages.map((name) => [name, `file:${tarballs[name]}`]));
  dependencies["egide-storage-memkv"] = `file:${memkvTarball}`;
  dependencies["@acme/egide-memkv"] = `file:${acmeTarball}`;
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "egide-template-path-app", private: true, type: "module", dependencies }, null, 2),
  );
  await run("npm", ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], app);
  for (const absent of [
    "@egide/storage-sqlite",
    "@egide/storage-postgres",
    "@egide/storage-conformance",
    "better-sqlite3",
    "pg",
    "vitest",
  ]) {
    check(!existsSync(join(app, "node_modules", absent)), `${absent} was installed with the server and the adapters`);
  }
  const byType = await serveOn(app, "by-type", "memkv", '[storage]\ntype = "memkv"\n\n[storage.memkv]\nmax_value_bytes = 1048576');
  const unnamed = await startServer(
    app,
    "unnamed",
    '[storage]\ntype = "acmekv"\n\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n',
  );
  if (unnamed.url !== undefined) await unnamed.stop();
  check(
    unnamed.url === undefined && unnamed.exit === 1 && unnamed.output().includes("egide-storage-acmekv"),
    `type "acmekv" without [storage] package should fail naming egide-storage-acmekv:\n${unnamed.output()}`,
  );
  const byPackage = await serveOn(app, "by-package", "acmekv", '[storage]\ntype = "acmekv"\npackage = "@acme/egide-memkv"');
  summary.push(
    `(c) packed egide-storage-memkv under the packed egide-server (no SQLite/PostgreSQL adapter): [storage] type = "memkv" → ${byType}; ` +
      `type = "acmekv" alone is refused (exit 1, names egide-storage-acmekv); with package = "@acme/egide-memkv" → ${byPackage} (${seconds(since)})`,
  );
  console.log(`verify-template-path ok in ${seconds(started)}:\n- ${summary.join("\n- ")}`);
} catch (error) {
  console.error(error instanceof Error ? error.message : error);
  if (summary.length > 0) console.error(`done before the failure:\n- ${summary.join("\n- ")}`);
  process.exitCode = 1;
} finally {
  if (keep) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
}
