import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";

/** The conditions an `import()` of a package matches, in the order Node tries them. */
const IMPORT_CONDITIONS = new Set(["node", "import", "default"]);

/**
 * The error {@link importInstalledPackage} throws when no directory holds the package: the one
 * "absent" that lets a caller try another name. Any other failure (a file of the package
 * missing, an error at load time) means the package is there and broken.
 */
export class PackageAbsentError extends Error {
  readonly code = "MODULE_NOT_FOUND";
  readonly packageName: string;

  constructor(packageName: string, directories: readonly string[]) {
    super(`Cannot find package '${packageName}' from ${directories.join(", ")}`);
    this.name = "PackageAbsentError";
    this.packageName = packageName;
  }
}

/**
 * Imports the installed package `name` as an application in the first of `directories` that
 * has it would: from the nearest `node_modules` folder, walking up, that holds it, through its
 * `exports` map with the conditions of an ESM `import` (`node`, `import`, `default`), else its
 * `main`, else `index.js`. `NODE_PATH` is deliberately not searched (package managers' bin
 * shims set it to their whole store), nor is pnpm's hoisted store (`node_modules/.pnpm/
 * node_modules`, which holds every package of the workspace, installed or not by the
 * application). Only a file inside the package folder is ever imported: never a builtin
 * module, a path outside the package, or a URL.
 */
export async function importInstalledPackage(directories: readonly string[], name: string): Promise<unknown> {
  for (const directory of directories) {
    for (let dir = resolve(directory); ; dir = dirname(dir)) {
      const modules = join(dir, "node_modules");
      const packageDir = join(modules, ...name.split("/"));
      if (!isPnpmStore(modules) && existsSync(join(packageDir, "package.json"))) {
        return import(pathToFileURL(packageEntry(packageDir, name)).href);
      }
      if (dirname(dir) === dir) break;
    }
  }
  throw new PackageAbsentError(name, directories);
}

function isPnpmStore(modules: string): boolean {
  return dirname(modules).endsWith(`${sep}.pnpm`);
}

/** The file `import(name)` loads from `packageDir`, checked to lie inside it. */
function packageEntry(packageDir: string, name: string): string {
  let manifest: { exports?: unknown; main?: unknown };
  try {
    manifest = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as typeof manifest;
  } catch (cause) {
    throw Object.assign(new Error(`the package.json of ${name} cannot be read: ${(cause as Error).message}`), { cause });
  }
  const target =
    manifest.exports !== undefined
      ? exportedEntry(manifest.exports)
      : typeof manifest.main === "string" && manifest.main !== ""
        ? manifest.main
        : "index.js";
  if (target === null) {
    throw Object.assign(
      new Error(`Cannot find module '${name}': its package.json exports nothing to import (no "." entry for node, import or default)`),
      {
        code: "ERR_PACKAGE_PATH_NOT_EXPORTED",
      },
    );
  }
  const file = resolve(packageDir, target);
  const inside = relative(packageDir, file);
  if (inside === "" || inside.startsWith("..") || isAbsolute(inside)) {
    throw new Error(`the package.json of ${name} points outside the package (${JSON.stringify(target)})`);
  }
  return file;
}

/** The `.` entry of an `exports` field for an ESM import, or null when it has none. */
function exportedEntry(exports: unknown): string | null {
  if (typeof exports === "string" || Array.isArray(exports)) return conditionalTarget(exports);
  if (typeof exports !== "object" || exports === null) return null;
  const keys = Object.keys(exports);
  // Subpath keys start with "."; condition keys never do.
  if (keys.some((key) => key.startsWith("."))) return conditionalTarget((exports as Record<string, unknown>)["."]);
  return conditionalTarget(exports);
}

function conditionalTarget(value: unknown, depth = 0): string | null {
  if (depth > 8) return null;
  if (typeof value === "string") return value.startsWith("./") ? value : null;
  if (Array.isArray(value)) {
    for (const item of value) {
      const target = conditionalTarget(item, depth + 1);
      if (target !== null) return target;
    }
    return null;
  }
  if (typeof value !== "object" || value === null) return null;
  for (const [condition, nested] of Object.entries(value)) {
    if (!IMPORT_CONDITIONS.has(condition)) continue;
    const target = conditionalTarget(nested, depth + 1);
    if (target !== null) return target;
  }
  return null;
}
