import { quoteIdentifier } from "./postgres-schema.js";

/** The SQL texts of one schema; table names are schema-qualified so no session state is needed. */
export class PostgresStatements {
  readonly get: string;
  readonly exists: string;
  readonly put: string;
  readonly delete: string;
  /** Range probes of keys only: `${inclusive}${bounded}`. */
  readonly seek: Record<string, string> = {};
  /** Scan pages: `${inclusive}${bounded}`. */
  readonly page: Record<string, string> = {};
  /** Whole listings in one statement: `${bounded}`. */
  readonly list: Record<string, string> = {};

  constructor(schema: string) {
    const table = `${quoteIdentifier(schema)}.egide_storage`;
    this.get = `SELECT value FROM ${table} WHERE key = $1`;
    this.exists = `SELECT 1 FROM ${table} WHERE key = $1`;
    this.put =
      `INSERT INTO ${table} (key, value) VALUES ($1, $2) ` +
      `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = NOW()`;
    this.delete = `DELETE FROM ${table} WHERE key = $1`;
    for (const inclusive of [true, false]) {
      for (const bounded of [true, false]) {
        const where = `key ${inclusive ? ">=" : ">"} $1${bounded ? " AND key < $2" : ""}`;
        const limit = bounded ? "$3" : "$2";
        this.seek[`${inclusive}${bounded}`] = `SELECT key FROM ${table} WHERE ${where} ORDER BY key LIMIT ${limit}`;
        this.page[`${inclusive}${bounded}`] = `SELECT key, value FROM ${table} WHERE ${where} ORDER BY key LIMIT ${limit}`;
      }
    }
    for (const bounded of [true, false]) this.list[`${bounded}`] = skipScanSql(table, bounded);
  }
}

/**
 * Vault's list as one statement: a recursive CTE that walks the primary-key index from child to
 * child (a "loose index scan"), one index probe per child, so a listing costs O(children) and
 * one round trip, and, being one statement, is one snapshot.
 *
 * Each step jumps from the child's first key to the next child: past a folder
 * (`prefix/name/…` → `>= prefix/name0`, since '0' follows '/') or past a leaf
 * (`key` → `>= key || chr(1)`, the smallest longer key, as keys hold no control characters).
 *
 * Parameters: $1 the first key to consider (inclusive), $2 the prefix, $3 at most this many
 * rows (NULL for all), then $4 the upper bound when `bounded`.
 */
function skipScanSql(table: string, bounded: boolean): string {
  const upper = bounded ? " AND key < $4" : "";
  const restSlash = "strpos(substr(w.key, length($2::text) + 1), '/')";
  const next =
    `CASE WHEN ${restSlash} > 0 ` +
    `THEN left(w.key, length($2::text) + ${restSlash} - 1) || '0' ` +
    `ELSE w.key || chr(1) END`;
  return (
    `WITH RECURSIVE walk(key) AS (` +
    `(SELECT key FROM ${table} WHERE key >= $1${upper} ORDER BY key LIMIT 1) ` +
    `UNION ALL ` +
    `SELECT (SELECT key FROM ${table} WHERE key >= (${next}) COLLATE "C"${upper} ORDER BY key LIMIT 1) FROM walk w WHERE w.key IS NOT NULL` +
    `) SELECT key FROM walk WHERE key IS NOT NULL LIMIT $3`
  );
}
