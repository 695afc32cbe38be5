/**
 * A linearizability checker for a history of KV operations (the Wing–Gong search with Lowe's
 * memoisation, as Porcupine does it), written for the multi-instance check-and-set test.
 *
 * The model: one register per KV key holding `{version, value}` (absent: version 0). A `read`
 * returns the register (or absent); a `cas-write(expectedVersion, value)` succeeds only when the
 * register's version is `expectedVersion` and then holds `{expectedVersion + 1, value}`, and
 * fails (a check-and-set mismatch) otherwise, leaving it as it was. Keys are independent
 * registers, so each key's sub-history is checked on its own (linearizability is compositional:
 * a history is linearizable iff each key's is).
 *
 * Outcomes: "ok" (answered), "failed" (definitely not applied: a mismatch for a write; a read
 * that failed says nothing and is left out), "unknown" (a timeout or a lost connection: the
 * operation may have taken effect at any moment after it was invoked, or never). An unknown
 * write's response time is taken as infinite, so it may be placed anywhere after its invocation;
 * "never" is the same as "after every other operation" (nothing follows to tell the difference),
 * so the search places an unknown write only where it takes effect and stops once every answered
 * operation is placed. That keeps the model deterministic (one register state per search node)
 * and spares the search the many equivalent places of a write that had no effect.
 *
 * The search (Porcupine's `checkSingle`): walk the call and return events in time order; at a
 * call, try to place that operation next (its step must be legal in the current state) and
 * restart from the first pending event; at a return whose call is not placed yet, undo the
 * last placement and try the next candidate. Each (placed set, register state) pair is explored
 * once, which bounds the work by the concurrency of the history rather than its length.
 */

/** What one key's register holds; absent is `{ version: 0, value: null }`. */
export interface RegisterValue {
  version: number;
  value: string;
}

/** A KV operation as a client saw it, for {@link checkKvLinearizability}. */
export type KvOperation = KvRead | KvCasWrite;

/** Fields every recorded operation has. */
interface RecordedOperation {
  /** Who issued it (a client issues one operation at a time); only used in explanations. */
  clientId: string | number;
  /** The register (KV key) it acted on. */
  key: string;
  /** When the client sent it (`performance.now()` ms). */
  invokedAt: number;
  /** When the client had the whole answer (`performance.now()` ms); ignored for "unknown". */
  respondedAt: number;
  /** Free text shown in explanations (for example the instance that served it). */
  note?: string;
}

/** A read of the key's current version: `value` null when the key was absent. */
export interface KvRead extends RecordedOperation {
  call: { type: "read" };
  outcome: { status: "ok"; value: RegisterValue | null } | { status: "failed" } | { status: "unknown" };
}

/** A check-and-set write: "ok" carries the version the server said it created. */
export interface KvCasWrite extends RecordedOperation {
  call: { type: "cas-write"; expectedVersion: number; value: string };
  outcome: { status: "ok"; version: number } | { status: "failed" } | { status: "unknown" };
}

/** Whether `op` is a read (narrows the operation, its call and its outcome together). */
export function isRead(op: KvOperation): op is KvRead {
  return op.call.type === "read";
}

/** Whether `op` is a check-and-set write (narrows the operation, its call and its outcome together). */
export function isCasWrite(op: KvOperation): op is KvCasWrite {
  return op.call.type === "cas-write";
}

/** Bounds of the search, per key. */
export interface CheckOptions {
  /** Memoised (linearized set, register state) pairs before giving up as inconclusive (default 2,000,000). */
  maxStates?: number;
  /** Wall-clock milliseconds per key before giving up as inconclusive (default 20,000). */
  timeLimitMs?: number;
}

/** The verdict: every key linearizable, or the first key that is not (or could not be decided). */
export type CheckResult =
  | { ok: true; keys: number; operations: number; statesExplored: number }
  | {
      ok: false;
      key: string;
      /** What is wrong, in a few lines: a named anomaly when one is evident, and the search's dead end. */
      explanation: string;
      /** True when the search hit a bound: not proven wrong, but not proven right either. */
      inconclusive: boolean;
      statesExplored: number;
    };

/** Internal state: the register as a version and value (null value: absent). */
interface State {
  version: number;
  value: string | null;
}

const ABSENT: State = { version: 0, value: null };

/**
 * Checks that `history` is linearizable against a register per key (see the module comment),
 * key by key. Returns `{ ok: true }`, or `{ ok: false, key, explanation }` for the first key
 * that is not linearizable (or whose search exceeded `options`' bounds: `inconclusive`).
 */
export function checkKvLinearizability(history: readonly KvOperation[], options: CheckOptions = {}): CheckResult {
  const byKey = new Map<string, KvOperation[]>();
  for (const op of history) {
    validate(op);
    const ops = byKey.get(op.key);
    if (ops === undefined) byKey.set(op.key, [op]);
    else ops.push(op);
  }
  let statesExplored = 0;
  for (const key of [...byKey.keys()].sort()) {
    const result = checkKey(key, byKey.get(key) as KvOperation[], options);
    statesExplored += result.statesExplored;
    if (!result.ok) return { ...result, statesExplored };
  }
  return { ok: true, keys: byKey.size, operations: history.length, statesExplored };
}

function validate(op: KvOperation): void {
  if (!Number.isFinite(op.invokedAt)) throw new TypeError(`operation of client ${op.clientId}: invokedAt must be a finite number`);
  if (op.outcome.status !== "unknown" && !(op.respondedAt >= op.invokedAt)) {
    throw new TypeError(
      `operation of client ${op.clientId}: respondedAt (${op.respondedAt}) must not be before invokedAt (${op.invokedAt})`,
    );
  }
}

/** A node of the doubly linked list of call and return events (Porcupine's `node`). */
interface EventNode {
  /** Index of the operation in the key's checked list; -1 for the head. */
  id: number;
  /** On a call event: its return event. Null on a return event (and the head). */
  match: EventNode | null;
  prev: EventNode | null;
  next: EventNode | null;
}

function checkKey(
  key: string,
  all: readonly KvOperation[],
  options: CheckOptions,
): { ok: true; statesExplored: number } | { ok: false; key: string; explanation: string; inconclusive: boolean; statesExplored: number } {
  const maxStates = options.maxStates ?? 2_000_000;
  const timeLimitMs = options.timeLimitMs ?? 20_000;
  // A read that failed or has no answer constrains nothing.
  const ops = all.filter((op) => isCasWrite(op) || op.outcome.status === "ok");
  const n = ops.length;

  // Events sorted by time; at equal times calls come first (the two operations count as concurrent).
  const events: { time: number; isCall: boolean; id: number }[] = [];
  ops.forEach((op, id) => {
    events.push({ time: op.invokedAt, isCall: true, id });
    events.push({ time: op.outcome.status === "unknown" ? Number.POSITIVE_INFINITY : op.respondedAt, isCall: false, id });
  });
  events.sort((a, b) => a.time - b.time || (a.isCall === b.isCall ? a.id - b.id : a.isCall ? -1 : 1));
  const head: EventNode = { id: -1, match: null, prev: null, next: null };
  const returns = new Map<number, EventNode>();
  let last = head;
  const callNodes: EventNode[] = [];
  for (const event of events) {
    const node: EventNode = { id: event.id, match: null, prev: last, next: null };
    last.next = node;
    last = node;
    if (event.isCall) callNodes[event.id] = node;
    else returns.set(event.id, node);
  }
  for (let id = 0; id < n; id++) (callNodes[id] as EventNode).match = returns.get(id) as EventNode;

  // The memo key's first part: the linearized set as 16-bit characters.
  const linearized = new Uint16Array(Math.ceil(n / 16) || 1);
  const seen = new Set<string>();
  const stack: { node: EventNode; state: State }[] = [];
  let state: State = ABSENT;
  let deepest: { prefix: number[]; state: State } = { prefix: [], state };
  // Done once every operation with an answer is placed: the unknown ones left over are placed
  // last, without effect (or with it: nothing follows that could tell).
  let remaining = ops.filter((op) => op.outcome.status !== "unknown").length;
  const started = performance.now();
  let steps = 0;

  let entry = head.next;
  while (remaining > 0) {
    // While an answered operation is left, its return event lies ahead of the walk.
    if (entry === null) throw new Error("unreachable: the walk passed every return event");
    if (entry.match !== null) {
      const op = ops[entry.id] as KvOperation;
      const next = step(state, op);
      const bit = entry.id;
      if (next !== null) {
        linearized[bit >>> 4] = (linearized[bit >>> 4] as number) | (1 << (bit & 15));
        const memo = `${String.fromCharCode(...linearized)}|${stateKey(next)}`;
        if (!seen.has(memo)) {
          seen.add(memo);
          stack.push({ node: entry, state });
          state = next;
          if (op.outcome.status !== "unknown") remaining--;
          lift(entry);
          if (stack.length > deepest.prefix.length) deepest = { prefix: stack.map((s) => s.node.id), state };
          if (seen.size > maxStates || ((++steps & 1023) === 0 && performance.now() - started > timeLimitMs)) {
            return {
              ok: false,
              key,
              inconclusive: true,
              statesExplored: seen.size,
              explanation: `inconclusive: the search for key ${JSON.stringify(key)} exceeded its bound (${seen.size} states, ${Math.round(
                performance.now() - started,
              )} ms) after linearizing at most ${deepest.prefix.length} of ${n} operations`,
            };
          }
          entry = head.next;
        } else {
          linearized[bit >>> 4] = (linearized[bit >>> 4] as number) & ~(1 << (bit & 15));
          entry = entry.next;
        }
      } else {
        entry = entry.next;
      }
    } else {
      // A return event whose call is not linearized yet: this branch is a dead end; backtrack.
      const top = stack.pop();
      if (top === undefined) {
        return { ok: false, key, inconclusive: false, statesExplored: seen.size, explanation: explain(key, ops, deepest) };
      }
      entry = top.node;
      state = top.state;
      if ((ops[entry.id] as KvOperation).outcome.status !== "unknown") remaining++;
      linearized[entry.id >>> 4] = (linearized[entry.id >>> 4] as number) & ~(1 << (entry.id & 15));
      unlift(entry);
      entry = entry.next;
    }
  }
  return { ok: true, statesExplored: seen.size };
}

/** Takes a call event and its return event out of the list. */
function lift(call: EventNode): void {
  (call.prev as EventNode).next = call.next;
  if (call.next !== null) call.next.prev = call.prev;
  const ret = call.match as EventNode;
  (ret.prev as EventNode).next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Puts them back (the inverse of {@link lift}, in reverse order). */
function unlift(call: EventNode): void {
  const ret = call.match as EventNode;
  (ret.prev as EventNode).next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  (call.prev as EventNode).next = call;
  if (call.next !== null) call.next.prev = call;
}

/**
 * The register after `op` is applied to `state`, or null when `op` cannot take effect here. An
 * unknown write is placed only where it takes effect: one that never does is placed after
 * everything else (see {@link checkKey}), which no other operation can tell apart.
 */
function step(state: State, op: KvOperation): State | null {
  if (isRead(op)) {
    if (op.outcome.status !== "ok") return state;
    const seen = op.outcome.value;
    const matches = seen === null ? state.version === 0 : state.version === seen.version && state.value === seen.value;
    return matches ? state : null;
  }
  const { expectedVersion, value } = op.call;
  const outcome = op.outcome;
  if (outcome.status === "failed") return state.version !== expectedVersion ? state : null;
  if (state.version !== expectedVersion) return null;
  if (outcome.status === "ok" && outcome.version !== expectedVersion + 1) return null;
  return { version: expectedVersion + 1, value };
}

function stateKey(s: State): string {
  return s.value === null ? `${s.version}` : `${s.version}:${JSON.stringify(s.value)}`;
}

function describeState(s: State): string {
  return s.value === null && s.version === 0 ? "absent" : `version ${s.version} = ${JSON.stringify(s.value)}`;
}

function describe(op: KvOperation, id?: number): string {
  const when = `[${op.invokedAt.toFixed(1)}, ${op.outcome.status === "unknown" ? "∞" : op.respondedAt.toFixed(1)}] ms`;
  const who = `client ${op.clientId}${op.note === undefined ? "" : ` (${op.note})`}`;
  const tag = id === undefined ? "" : `#${id} `;
  if (isRead(op)) {
    const outcome = op.outcome;
    const got = outcome.status === "ok" ? (outcome.value === null ? "absent" : describeState(outcome.value)) : outcome.status;
    return `${tag}${who} read → ${got} ${when}`;
  }
  const outcome = op.outcome;
  const got = outcome.status === "ok" ? `ok, version ${outcome.version}` : outcome.status;
  return `${tag}${who} cas-write(expected ${op.call.expectedVersion}, ${JSON.stringify(op.call.value)}) → ${got} ${when}`;
}

/**
 * Why a key's history is not linearizable: a named anomaly when one is evident from the
 * operations themselves, then where the search got stuck (the longest linearizable prefix it
 * found, the register there, and the operations that had to come next and why none could).
 */
function explain(key: string, ops: readonly KvOperation[], deepest: { prefix: number[]; state: State }): string {
  const lines = [`key ${JSON.stringify(key)} is not linearizable (${ops.length} operations).`];
  const anomaly = namedAnomaly(ops);
  if (anomaly !== null) lines.push(anomaly);
  const done = new Set(deepest.prefix);
  const pending = ops.map((op, id) => ({ op, id })).filter(({ id }) => !done.has(id));
  const firstReturn = Math.min(...pending.map(({ op }) => (op.outcome.status === "unknown" ? Number.POSITIVE_INFINITY : op.respondedAt)));
  const candidates = pending.filter(({ op }) => op.invokedAt <= firstReturn);
  lines.push(
    `Longest linearizable prefix: ${deepest.prefix.length} of ${ops.length} operations, leaving the register ${describeState(deepest.state)}.`,
  );
  const tail = deepest.prefix.slice(-3);
  if (tail.length > 0) lines.push(`It ends with: ${tail.map((id) => describe(ops[id] as KvOperation, id)).join("; ")}.`);
  lines.push("None of the operations that must come next fits:");
  for (const { op, id } of candidates.slice(0, 8)) lines.push(`  ${describe(op, id)}: ${whyNot(deepest.state, op)}`);
  if (candidates.length > 8) lines.push(`  … and ${candidates.length - 8} more`);
  return lines.join("\n");
}

/** Why `op` cannot be placed where the register holds `state`. */
function whyNot(state: State, op: KvOperation): string {
  const holds = `the register holds ${describeState(state)}`;
  if (isRead(op)) return holds;
  const outcome = op.outcome;
  if (outcome.status === "failed") return `${holds}, so a check-and-set from version ${op.call.expectedVersion} could not fail`;
  return `${holds}, so a check-and-set from version ${op.call.expectedVersion} could not apply`;
}

/** The first evident anomaly of a key's history, or null when only the search shows it. */
function namedAnomaly(ops: readonly KvOperation[]): string | null {
  const writes = ops.map((op, id) => ({ op, id })).filter((w): w is { op: KvCasWrite; id: number } => isCasWrite(w.op));
  const okWrites = writes.flatMap((w) => (w.op.outcome.status === "ok" ? [{ ...w, version: w.op.outcome.version }] : []));
  for (const { op, id, version } of okWrites) {
    if (version !== op.call.expectedVersion + 1) {
      return `Anomaly: ${describe(op, id)} created version ${version} from expected version ${op.call.expectedVersion}.`;
    }
  }
  const byVersion = new Map<number, number>();
  for (const { op, id, version } of okWrites) {
    const other = byVersion.get(version);
    if (other !== undefined) {
      return `Anomaly (lost write): two acknowledged check-and-set writes created version ${version}: ${describe(
        ops[other] as KvOperation,
        other,
      )} and ${describe(op, id)}.`;
    }
    byVersion.set(version, id);
  }
  for (const { op, id } of okWrites) {
    const base = op.call.expectedVersion;
    if (base === 0) continue;
    const creators = writes.filter((w) => w.op.call.expectedVersion === base - 1 && w.op.outcome.status !== "failed");
    if (creators.length === 0) {
      return `Anomaly: ${describe(op, id)} built on version ${base}, which no acknowledged or unanswered write created (a write missing from the history, or applied without being asked).`;
    }
  }
  for (const [id, op] of ops.entries()) {
    if (!isRead(op) || op.outcome.status !== "ok" || op.outcome.value === null) continue;
    const seen = op.outcome.value;
    const sources = writes.filter((w) => w.op.call.value === seen.value && w.op.outcome.status !== "failed");
    if (sources.length === 0) return `Anomaly: ${describe(op, id)} returned a value no write of this key wrote.`;
    if (!sources.some((w) => w.op.call.expectedVersion + 1 === seen.version)) {
      return `Anomaly: ${describe(op, id)} saw ${JSON.stringify(seen.value)} at version ${seen.version}, but it was written as version ${
        (sources[0] as { op: KvCasWrite }).op.call.expectedVersion + 1
      } (applied twice, or renumbered).`;
    }
    if (sources.every((w) => w.op.invokedAt > op.respondedAt)) {
      return `Anomaly: ${describe(op, id)} returned a value written only after it answered.`;
    }
    const newer = okWrites.find((w) => w.version > seen.version && w.op.respondedAt < op.invokedAt);
    if (newer !== undefined)
      return `Anomaly (stale read): ${describe(op, id)}, but ${describe(newer.op, newer.id)} had completed before it.`;
  }
  for (const [id, op] of ops.entries()) {
    if (!isRead(op) || op.outcome.status !== "ok" || op.outcome.value !== null) continue;
    const newer = okWrites.find((w) => w.op.respondedAt < op.invokedAt);
    if (newer !== undefined)
      return `Anomaly (stale read): ${describe(op, id)}, but ${describe(newer.op, newer.id)} had completed before it.`;
  }
  return null;
}
