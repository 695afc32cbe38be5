import { quoteIdentifier } from "./postgres-schema.js";

/** The SQL texts of one schema; table names are schema-qualified so no session state is needed. */
export class PostgresSql {
  readonly get: string;
  /** The rows of every key of `$1::text[]` present (in no particular order). */
  readonly getMany: string;
  readonly exists: string;
  readonly put: string;
  /** Upserts `unnest($1::text[], $2::bytea[])`: many rows in one statement. */
  readonly putMany: string;
  readonly delete: string;
  /**
   * With the change feed: `put` and `delete` as one statement that also NOTIFYs (`$3` and `$2`
   * are the payloads). A data-modifying CTE runs exactly once whatever the outer SELECT does,
   * and the notification is queued in the statement's implicit transaction, so it is sent when,
   * and only if, the write commits: still one round trip. Without the feed, the plain texts.
   */
  readonly putNotifying: string;
  readonly deleteNotifying: string;
  /** The NOTIFY channel, or undefined without the change feed. */
  readonly channel: string | undefined;
  /** Range probes of keys only: `${inclusive}${bounded}`. */
  readonly seek: Record<string, string> = {};
  /** Scan pages: `${inclusive}${bounded}`. */
  readonly page: Record<string, string> = {};
  /** Whole listings in one statement: `${bounded}`. */
  readonly list: Record<string, string> = {};

  /** @param channel the change feed's NOTIFY channel (a checked lower-case identifier), when the feed is on */
  constructor(schema: string, channel?: string) {
    const table = `${quoteIdentifier(schema)}.egide_storage`;
    this.channel = channel;
    this.get = `SELECT value FROM ${table} WHERE key = $1`;
    this.getMany = `SELECT key, value FROM ${table} WHERE key = ANY($1::text[])`;
    this.exists = `SELECT 1 FROM ${table} WHERE key = $1`;
    this.put = `INSERT INTO ${table} (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = NOW()`;
    this.putMany =
      `INSERT INTO ${table} (key, value) SELECT * FROM unnest($1::text[], $2::bytea[]) ` +
      `ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = NOW()`;
    this.delete = `DELETE FROM ${table} WHERE key = $1`;
    this.putNotifying = channel === undefined ? this.put : `WITH w AS (${this.put}) SELECT pg_notify('${channel}', $3)`;
    this.deleteNotifying = channel === undefined ? this.delete : `WITH w AS (${this.delete}) SELECT pg_notify('${channel}', $2)`;
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

  /**
   * The end of a read-write transaction that wrote keys: the NOTIFY and the COMMIT as one
   * simple-protocol query (one round trip). The notification is queued in the transaction, so it
   * is sent only if the COMMIT succeeds. `payload` is an SQL literal made by the client's
   * `escapeLiteral`. Requires the change feed.
   */
  notifyAndCommit(payload: string): string {
    if (this.channel === undefined) throw new Error("notifyAndCommit without a change feed channel");
    return `SELECT pg_notify('${this.channel}', ${payload}); COMMIT`;
  }
}

/**
 * Vault's list as one statement: a recursive CTE that walks the primary-key index in batches
 * (a batched "loose index scan"), so a listing costs one round trip, is one snapshot, and reads
 * O(children) index ranges however large the subtrees.
 *
 * Each step reads a batch of keys from a bound, then moves the bound past the batch's last key:
 * past its folder when it lies in one (`prefix/name/…` → `>= prefix/name0`, since '0' follows
 * '/'), else just past it (`>= key || chr(1)`, the smallest longer key, as keys hold no control
 * characters). A batch that ended in a folder makes the next batch one key (a jump per folder);
 * a batch that ended on a leaf doubles the next, up to a maximum (a flat folder in few steps).
 * The walk stops at the first short batch. The caller turns the keys into entries
 * (`ChildCollector`), skipping the rest of each folder's keys within a batch.
 *
 * Parameters: $1 the first key to consider (inclusive), $2 the prefix, $3 at most this many
 * keys (NULL for all), $4 the first batch size, $5 the largest batch size, then $6 the upper
 * bound when `bounded`.
 */
function skipScanSql(table: string, bounded: boolean): string {
  const upper = bounded ? " AND key < $6" : "";
  const inFolder = "strpos(substr(l.last, length($2::text) + 1), '/') > 0";
  return (
    `WITH RECURSIVE walk(keys, n) AS (` +
    `SELECT ARRAY(SELECT key FROM ${table} WHERE key >= $1${upper} ORDER BY key LIMIT $4::int), $4::int ` +
    `UNION ALL ` +
    `SELECT ARRAY(SELECT key FROM ${table} WHERE key >= s.bound COLLATE "C"${upper} ORDER BY key LIMIT s.n), s.n ` +
    `FROM walk w CROSS JOIN LATERAL (` +
    `SELECT CASE WHEN ${inFolder} ` +
    `THEN left(l.last, length($2::text) + strpos(substr(l.last, length($2::text) + 1), '/') - 1) || '0' ` +
    `ELSE l.last || chr(1) END AS bound, ` +
    `CASE WHEN ${inFolder} THEN 1 ELSE least(w.n * 2, $5::int) END AS n ` +
    `FROM (SELECT w.keys[array_length(w.keys, 1)] AS last) l` +
    `) s WHERE array_length(w.keys, 1) = w.n` +
    `) SELECT unnest(keys) AS key FROM walk LIMIT $3`
  );
}
