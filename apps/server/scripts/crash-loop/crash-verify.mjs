import { vaultRequest } from "./vault-request.mjs";

/** KV v2's default `max_versions`: older versions of a counter are gone and cannot be read back. */
const KEPT_VERSIONS = 10;
/** The audit log route's largest page. */
const AUDIT_PAGE = 10_000;
/** Read-backs in flight at once. */
const CONCURRENCY = 16;

/**
 * @typedef {object} CycleVerdict
 * @property {number} checked acknowledged writes read back
 * @property {number} lost acknowledged writes (or CAS increments) not found
 * @property {number} mismatched found with another value or version, or a counter beyond what was sent
 * @property {number} unaudited acknowledged requests without their audit row
 * @property {number} unknownApplied writes in flight at the kill that turned out applied (fine either way)
 * @property {number} casUnknownApplied CAS writes in flight at the kill that turned out applied
 * @property {number} auditRows audit rows read for this cycle
 * @property {number} auditCursor the largest audit id seen, where the next cycle's pass starts
 * @property {string[]} problems one line per failure, for the report
 */

/**
 * Checks what must hold after a restart, on the restarted server:
 * - every acknowledged write of the cycle (and `earlier` ones, a sample of previous cycles) reads
 *   back at its version with its value (`GET secret/data/<path>?version=v`);
 * - every write whose outcome is unknown is either absent or there with its own value;
 * - each counter's count equals its version, and its version equals what it was after the last
 *   cycle plus the CAS writes acknowledged since, plus at most the ones whose outcome is unknown;
 *   each acknowledged CAS write still kept (the last 10 versions) reads back with its value;
 * - every acknowledged request (the load's and these read-backs') has its audit row: by request
 *   id when the answer carried one, else (4xx refusals) by counting the failed rows of that
 *   operation and path. The rows are read from `GET /v1/sys/audit-log?path_prefix=...&after_id=`,
 *   from where the previous cycle's pass stopped: ids only grow (SQLite's rowid, PostgreSQL's
 *   sequence) and every row of this cycle was written after that pass.
 *
 * @param {{ url: string, token: string, prefix: string, load: import("./crash-load.mjs").CycleLoad,
 *   earlier: import("./crash-load.mjs").AckedWrite[], counters: Map<string, number>, auditCursor: number }} options
 *   `counters`: each counter path's version after the previous cycle, updated in place
 * @returns {Promise<CycleVerdict>}
 */
export async function verifyCycle(options) {
  const { url, token, load } = options;
  /** @type {CycleVerdict} */
  const verdict = {
    checked: 0,
    lost: 0,
    mismatched: 0,
    unaudited: 0,
    unknownApplied: 0,
    casUnknownApplied: 0,
    auditRows: 0,
    auditCursor: options.auditCursor,
    problems: [],
  };
  const requestIds = [...load.requestIds];
  const refusals = new Map(load.refusals);
  const refused = (operation, path) => {
    const key = `${operation} secret/data/${path}`;
    refusals.set(key, (refusals.get(key) ?? 0) + 1);
  };
  // Read-backs retry a connection error a few times: the server just started, and a failed
  // read-back must not pass for a lost write.
  const read = async (path, version) => {
    const query = version === undefined ? "" : `?version=${version}`;
    for (let attempt = 1; ; attempt++) {
      try {
        const answer = await vaultRequest(url, "GET", `/v1/secret/data/${path}${query}`, { token });
        if (answer.status === 200) requestIds.push(answer.body.request_id);
        else if (answer.status < 500) refused("read", path);
        if (answer.status < 500 || attempt >= 5) return answer;
      } catch (error) {
        if (attempt >= 5) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
    }
  };

  const writes = [...load.acked, ...options.earlier];
  await eachLimit(writes, CONCURRENCY, async (write) => {
    verdict.checked++;
    const answer = await read(write.path, write.version);
    if (answer.status === 404) {
      verdict.lost++;
      verdict.problems.push(`lost: ${write.path} version ${write.version} (acknowledged, request ${write.requestId}) reads 404`);
    } else if (
      answer.status !== 200 ||
      answer.body.data.data.value !== write.value ||
      answer.body.data.metadata.version !== write.version
    ) {
      verdict.mismatched++;
      verdict.problems.push(
        `mismatched: ${write.path} version ${write.version}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`,
      );
    }
  });
  await eachLimit(load.unknown, CONCURRENCY, async (write) => {
    const answer = await read(write.path);
    if (answer.status === 200 && answer.body.data.data.value === write.value && answer.body.data.metadata.version === 1)
      verdict.unknownApplied++;
    else if (answer.status !== 404) {
      verdict.mismatched++;
      verdict.problems.push(
        `corrupted: ${write.path} (in flight at the kill): ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`,
      );
    }
  });

  for (const [path, before] of options.counters) {
    const answer = await read(path);
    let version = 0;
    if (answer.status === 200) {
      version = answer.body.data.metadata.version;
      if (answer.body.data.data.count !== version) {
        verdict.mismatched++;
        verdict.problems.push(`counter ${path}: count ${answer.body.data.data.count} at version ${version}`);
      }
    } else if (answer.status !== 404) {
      throw new Error(`counter ${path}: ${answer.status} ${JSON.stringify(answer.body)}`);
    }
    const least = before + (load.casAckedBy.get(path) ?? 0);
    const most = least + (load.casUnknownBy.get(path) ?? 0);
    if (version < least) {
      verdict.lost += least - version;
      verdict.problems.push(`counter ${path}: version ${version}, but ${least} CAS writes were acknowledged`);
    } else if (version > most) {
      verdict.mismatched += version - most;
      verdict.problems.push(`counter ${path}: version ${version}, more than the ${most} CAS writes sent`);
    } else {
      verdict.casUnknownApplied += version - least;
    }
    options.counters.set(path, version);
  }
  const kept = load.casAcked.filter((write) => write.version > (options.counters.get(write.path) ?? 0) - KEPT_VERSIONS);
  await eachLimit(kept, CONCURRENCY, async (write) => {
    verdict.checked++;
    const answer = await read(write.path, write.version);
    if (answer.status !== 200 || answer.body.data.data.by !== write.value || answer.body.data.data.count !== write.version) {
      if (answer.status === 404) verdict.lost++;
      else verdict.mismatched++;
      verdict.problems.push(
        `CAS write ${write.path} version ${write.version} (${write.value}): ${answer.status} ${JSON.stringify(answer.body).slice(0, 300)}`,
      );
    }
  });

  // The audit pass, last: every request above was answered, so its row is committed.
  const seen = new Set();
  const failed = new Map();
  for (;;) {
    const query = `path_prefix=${encodeURIComponent(`secret/data/${options.prefix}/`)}&after_id=${verdict.auditCursor}&limit=${AUDIT_PAGE}`;
    const page = await vaultRequest(url, "GET", `/v1/sys/audit-log?${query}`, { token, timeoutMs: 60_000 });
    if (page.status !== 200) throw new Error(`GET /v1/sys/audit-log: ${page.status} ${JSON.stringify(page.body)}`);
    const entries = page.body.data.entries;
    for (const entry of entries) {
      seen.add(entry.request_id);
      if (!entry.success) {
        // A write is audited as "create" when the key did not exist at the time, else "update".
        const key = `${entry.operation === "create" || entry.operation === "update" ? "write" : entry.operation} ${entry.path}`;
        failed.set(key, (failed.get(key) ?? 0) + 1);
      }
      verdict.auditCursor = Math.max(verdict.auditCursor, entry.id);
    }
    verdict.auditRows += entries.length;
    if (entries.length < AUDIT_PAGE) break;
  }
  for (const id of requestIds) {
    if (!seen.has(id)) {
      verdict.unaudited++;
      if (verdict.problems.length < 50) verdict.problems.push(`unaudited: request ${id} was answered but has no audit row`);
    }
  }
  for (const [key, count] of refusals) {
    const rows = failed.get(key) ?? 0;
    if (rows < count) {
      verdict.unaudited += count - rows;
      verdict.problems.push(`unaudited: ${count} refusals of ${key} answered, ${rows} failed audit rows`);
    }
  }
  return verdict;
}

/** Runs `fn` over `items`, at most `limit` at once. */
async function eachLimit(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
