import { quoteIdentifier } from "./postgres-schema.js";

/** The SQL texts of one schema; table names are schema-qualified so no session state is needed. */
export class PostgresStatements {
  readonly get: string;
  readonly exists: string;
  readonly put: string;
  readonly delete: string;
  /** Seek probes: `${inclusive}${bounded}`. */
  readonly seek: Record<string, string> = {};
  /** Scan pages: `${inclusive}${bounded}`. */
  readonly page: Record<string, string> = {};

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
  }
}
