import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A fresh directory for database files, removed by the returned cleanup. */
export function tempDirectory(label: string): { dir: string; file: (name?: string) => string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `egide-${label}-`));
  let counter = 0;
  return {
    dir,
    file: (name) => join(dir, name ?? `db-${++counter}.sqlite`),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
