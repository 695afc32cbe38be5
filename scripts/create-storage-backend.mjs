#!/usr/bin/env node
// Usage: node scripts/create-storage-backend.mjs <type> [--dir <target>] [--package <name>]
//
// Starts a new Egide storage adapter: copies templates/storage-backend to <target> (default
// ./egide-storage-<type>), filling in the type, the package name (default
// egide-storage-<type>) and the versions of @egide/storage-core and @egide/storage-conformance
// in this repository. The copy builds as it is; its conformance run fails only on the members
// left to write. See docs/adding-a-backend.md. Plain Node, no dependencies.
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { isBuiltin } from "node:module";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** The template copied by default. */
export const TEMPLATE_DIR = join(root, "templates", "storage-backend");

/** The longest storage type name, as storage-core's `assertStorageType`. */
const MAX_STORAGE_TYPE_LENGTH = 64;
/** The longest npm package name. */
const MAX_PACKAGE_NAME_LENGTH = 214;
/** What a template may hold that is never copied (a template someone built or installed in place). */
const SKIPPED = new Set(["node_modules", "dist", "tsconfig.tsbuildinfo", "tsconfig.test.tsbuildinfo", "test-results.json"]);

/**
 * Why `type` is not a storage type name, or null when it is: lower-case ASCII letters, digits and
 * "-", starting with a letter, at most 64 characters (storage-core's `assertStorageType`). A
 * plain scan, no regular expression.
 */
export function storageTypeProblem(type) {
  if (typeof type !== "string" || type.length === 0) return "is empty";
  if (type.length > MAX_STORAGE_TYPE_LENGTH) return `is longer than ${MAX_STORAGE_TYPE_LENGTH} characters`;
  for (let i = 0; i < type.length; i++) {
    const c = type.charCodeAt(i);
    const letter = c >= 0x61 && c <= 0x7a;
    if (!(letter || (i > 0 && ((c >= 0x30 && c <= 0x39) || c === 0x2d)))) {
      return i === 0 ? "must start with a lower-case letter" : `has ${JSON.stringify(type[i])} at position ${i + 1}`;
    }
  }
  return null;
}

/** Whether `name` is an npm package name (`name` or `@scope/name`), as storage-core's `assertPackageName`. */
export function isPackageName(name) {
  if (typeof name !== "string" || name.length > MAX_PACKAGE_NAME_LENGTH) return false;
  const scoped = name.startsWith("@");
  const slash = name.indexOf("/");
  const parts = scoped ? (slash > 1 ? [name.slice(1, slash), name.slice(slash + 1)] : []) : [name];
  // A builtin's name ("events") would never load the adapter: storage-core refuses it too.
  return parts.length > 0 && parts.every(isPackageNamePart) && !isBuiltin(name);
}

function isPackageNamePart(part) {
  if (part.length === 0 || part.startsWith(".") || part.startsWith("_")) return false;
  for (let i = 0; i < part.length; i++) {
    const c = part.charCodeAt(i);
    const ok = (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2e || c === 0x5f || c === 0x7e;
    if (!ok) return false;
  }
  return true;
}

/** "my-kv" → "MyKv": the type in class names. */
function pascalCase(type) {
  return type
    .split("-")
    .map((part) => (part === "" ? "" : part[0].toUpperCase() + part.slice(1)))
    .join("");
}

function readVersion(packageDir) {
  return JSON.parse(readFileSync(join(root, "packages", packageDir, "package.json"), "utf8")).version;
}

/**
 * The template's placeholders and what they become for `type`:
 * `__TYPE__` (my-kv), `__Type__` (MyKv), `__CONST__` (MY_KV), `__PACKAGE__`, and the versions of
 * storage-core (`__STORAGE_CORE_VERSION__`, `__STORAGE_CORE_RANGE__` = ^major.minor, the peer
 * range) and storage-conformance (`__STORAGE_CONFORMANCE_VERSION__`) in this repository.
 */
export function placeholderValues(type, packageName = `egide-storage-${type}`) {
  const core = readVersion("storage-core");
  const [major, minor] = core.split(".");
  return {
    __TYPE__: type,
    __Type__: pascalCase(type),
    __CONST__: type.toUpperCase().replaceAll("-", "_"),
    __PACKAGE__: packageName,
    __STORAGE_CORE_VERSION__: core,
    __STORAGE_CORE_RANGE__: `^${major}.${minor}`,
    __STORAGE_CONFORMANCE_VERSION__: readVersion("storage-conformance"),
  };
}

/**
 * Replaces every placeholder of `values` in `text` in one left-to-right pass, so that a value is
 * never scanned again and `__CONST___TYPE` reads as `__CONST__` then `_TYPE`.
 */
export function fillPlaceholders(text, values) {
  const names = Object.keys(values);
  let out = "";
  let from = 0;
  for (let at = text.indexOf("__"); at !== -1; at = text.indexOf("__", at)) {
    const name = names.find((candidate) => text.startsWith(candidate, at));
    if (name === undefined) {
      at += 1;
      continue;
    }
    out += text.slice(from, at) + values[name];
    at += name.length;
    from = at;
  }
  return out + text.slice(from);
}

/**
 * Copies the tree `source` into `target`, filling the placeholders of `values` in file names and
 * contents. Existing files are overwritten (the verify script lays a finished adapter over a
 * fresh copy this way). Returns the files written, relative to `target`.
 */
export function copyFilled(source, target, values) {
  const written = [];
  const walk = (from, to) => {
    mkdirSync(to, { recursive: true });
    for (const entry of readdirSync(from, { withFileTypes: true })) {
      if (SKIPPED.has(entry.name)) continue;
      const path = join(from, entry.name);
      const destination = join(to, fillPlaceholders(entry.name, values));
      if (entry.isDirectory()) walk(path, destination);
      else if (entry.isFile()) {
        writeFileSync(destination, fillPlaceholders(readFileSync(path, "utf8"), values));
        written.push(relative(target, destination));
      }
    }
  };
  walk(source, target);
  return written.sort();
}

/**
 * Creates a new adapter package from the template. Throws (with a message for the command line)
 * on a bad type or package name, or a target that exists and is not an empty directory.
 */
export function createStorageBackend({ type, dir, packageName }) {
  const typeProblem = storageTypeProblem(type);
  if (typeProblem !== null) {
    throw new Error(
      `${JSON.stringify(type)} is not a storage type name: it ${typeProblem} (lower-case letters, digits and "-", starting with a letter, at most ${MAX_STORAGE_TYPE_LENGTH} characters)`,
    );
  }
  const name = packageName ?? `egide-storage-${type}`;
  if (!isPackageName(name)) {
    throw new Error(
      `${JSON.stringify(name)} is not an npm package name (name or @scope/name: lower-case letters, digits, "-", ".", "_", "~")`,
    );
  }
  const target = resolve(dir ?? `egide-storage-${type}`);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
    throw new Error(`${target} already exists and is not an empty directory; choose another --dir`);
  }
  const files = copyFilled(TEMPLATE_DIR, target, placeholderValues(type, name));
  return { target, packageName: name, files };
}

function main(argv) {
  const usage = "Usage: node scripts/create-storage-backend.mjs <type> [--dir <target>] [--package <name>]";
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { dir: { type: "string" }, package: { type: "string" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error) {
    console.error(`${error.message}\n${usage}`);
    return 2;
  }
  if (parsed.values.help) {
    console.log(usage);
    return 0;
  }
  if (parsed.positionals.length !== 1) {
    console.error(`expected exactly one storage type\n${usage}`);
    return 2;
  }
  const [type] = parsed.positionals;
  let created;
  try {
    created = createStorageBackend({ type, dir: parsed.values.dir, packageName: parsed.values.package });
  } catch (error) {
    console.error(`create-storage-backend: ${error.message}`);
    return 1;
  }
  const shown = relative(process.cwd(), created.target) || ".";
  console.log(`Created ${created.packageName} (storage type "${type}") in ${created.target}:`);
  for (const file of created.files) console.log(`  ${file}`);
  console.log(`
Next:
  cd ${shown}
  npm install
  npm run typecheck
  npm test          # fails only on the members left to write; each failure names one

Then follow docs/adding-a-backend.md in the Egide repository.`);
  return 0;
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
