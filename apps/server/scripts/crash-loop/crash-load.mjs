import { randomBytes } from "node:crypto";
import { vaultRequest } from "./vault-request.mjs";

/**
 * @typedef {object} AckedWrite a write the server answered 200: it must read back, at this version, with this value
 * @property {string} path the KV v2 path below the `secret/` mount
 * @property {number} version
 * @property {string} value
 * @property {string} requestId the answer's `request_id`: its audit row must exist
 */

/**
 * @typedef {object} CycleLoad what the clients saw during one cycle's load, up to the kill
 * @property {AckedWrite[]} acked unique-secret writes answered 200
 * @property {{ path: string, value: string }[]} unknown writes without a complete answer (in flight at the kill), or answered
 *   with an error other than a refusal: applied or not, either is fine, anything else is corruption
 * @property {AckedWrite[]} casAcked check-and-set writes answered 200, per counter in `counter`
 * @property {Map<string, number>} casAckedBy acknowledged CAS writes per counter path
 * @property {Map<string, number>} casUnknownBy CAS writes per counter path whose outcome is unknown
 * @property {number} casMismatches CAS writes refused (the version had moved on)
 * @property {string[]} requestIds every request id answered with a body that carries one (writes, CAS writes, reads)
 * @property {Map<string, number>} refusals answered errors without a request id, by `operation path` ("write" for create or
 *   update): each needs a failed audit row
 * @property {string[]} violations invariants broken while the load ran (a counter whose value is not its version, ...)
 * @property {string[]} errors answers with a 5xx status (their audit row may be missing: the log may be what failed)
 */

/**
 * Runs the load until `stop()` resolves: `writers` clients each writing unique secrets (a new
 * path and a new random value every time, `secret/data/<prefix>/c<cycle>/w<writer>/<n>`), and
 * `casClients` clients doing read-modify-write with check-and-set on the `counters` (data
 * `{count: v + 1, by}` written with `options.cas = v`, so a counter's count always equals its
 * version, and its version is the number of CAS writes that succeeded). A client stops at its
 * first request without an answer: the server is gone.
 *
 * @param {{ url: string, token: string, prefix: string, cycle: number, writers: number, counters: string[],
 *   casClients: number, stop: Promise<void> }} options
 * @returns {Promise<CycleLoad>}
 */
export async function runCycleLoad(options) {
  const { url, token, prefix, cycle } = options;
  /** @type {CycleLoad} */
  const load = {
    acked: [],
    unknown: [],
    casAcked: [],
    casAckedBy: new Map(),
    casUnknownBy: new Map(),
    casMismatches: 0,
    requestIds: [],
    refusals: new Map(),
    violations: [],
    errors: [],
  };
  let stopped = false;
  void options.stop.then(() => {
    stopped = true;
  });
  // A 4xx answer is a refusal the server decided on, audited before it was sent; a 5xx is kept apart.
  const refused = (operation, path, answer) => {
    if (answer.status >= 500) {
      load.errors.push(`${operation} ${path}: ${answer.status} ${JSON.stringify(answer.body).slice(0, 200)}`);
      return;
    }
    const key = `${operation} secret/data/${path}`;
    load.refusals.set(key, (load.refusals.get(key) ?? 0) + 1);
  };
  const bump = (map, key) => map.set(key, (map.get(key) ?? 0) + 1);

  const writer = async (w) => {
    for (let n = 0; !stopped; n++) {
      const path = `${prefix}/c${cycle}/w${w}/${n}`;
      const value = `${prefix}-${cycle}-${w}-${n}-${randomBytes(12).toString("hex")}`;
      let answer;
      try {
        answer = await vaultRequest(url, "POST", `/v1/secret/data/${path}`, { token, body: { data: { value } } });
      } catch {
        load.unknown.push({ path, value });
        return;
      }
      if (answer.status === 200 && Number.isInteger(answer.body?.data?.version)) {
        load.acked.push({ path, version: answer.body.data.version, value, requestId: answer.body.request_id });
        load.requestIds.push(answer.body.request_id);
        if (answer.body.data.version !== 1) load.violations.push(`${path}: a first write answered version ${answer.body.data.version}`);
      } else {
        // An error answer (a 503 while the storage struggles, say): not acknowledged, so it counts
        // like an unknown write; a refusal still has its audit row.
        load.unknown.push({ path, value });
        refused("write", path, answer);
      }
    }
  };

  const casClient = async (c) => {
    const path = options.counters[c % options.counters.length];
    for (let n = 0; !stopped; n++) {
      let read;
      try {
        read = await vaultRequest(url, "GET", `/v1/secret/data/${path}`, { token });
      } catch {
        return;
      }
      let version;
      if (read.status === 200) {
        load.requestIds.push(read.body.request_id);
        version = read.body.data.metadata.version;
        if (read.body.data.data.count !== version)
          load.violations.push(`${path}: read count ${read.body.data.data.count} at version ${version}`);
      } else if (read.status === 404) {
        refused("read", path, read);
        version = 0;
      } else {
        refused("read", path, read);
        await new Promise((resolve) => setTimeout(resolve, 10));
        continue;
      }
      const value = `${prefix}-${cycle}-cas${c}-${n}`;
      let write;
      try {
        write = await vaultRequest(url, "POST", `/v1/secret/data/${path}`, {
          token,
          body: { data: { count: version + 1, by: value }, options: { cas: version } },
        });
      } catch {
        bump(load.casUnknownBy, path);
        return;
      }
      if (write.status === 200) {
        load.requestIds.push(write.body.request_id);
        load.casAcked.push({ path, version: write.body.data.version, value, requestId: write.body.request_id });
        bump(load.casAckedBy, path);
        if (write.body.data.version !== version + 1)
          load.violations.push(`${path}: CAS ${version} answered version ${write.body.data.version}`);
      } else if (write.status === 400 && /check-and-set/.test(String(write.body?.errors?.[0]))) {
        load.casMismatches++;
        refused("write", path, write);
      } else {
        // Neither applied for sure nor refused for sure: the count may or may not include it.
        bump(load.casUnknownBy, path);
        refused("write", path, write);
      }
    }
  };

  await Promise.all([
    ...Array.from({ length: options.writers }, (_, w) => writer(w)),
    ...Array.from({ length: options.casClients }, (_, c) => casClient(c)),
  ]);
  return load;
}
