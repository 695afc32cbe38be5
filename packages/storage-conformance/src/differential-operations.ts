import fc from "fast-check";
import { StorageError } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import { hexOrNull } from "./utf8.js";

/**
 * Key segments of the differential test: few, so random operations keep hitting the same keys
 * and folders, with multi-byte and astral characters and SQL wildcards. No segment is a proper
 * prefix of another.
 */
const SEGMENTS = ["a", "é", "\uFFFD", "😀", "%_", "c.d", "xy"] as const;

/**
 * Partial segments: proper prefixes of {@link SEGMENTS} and never a whole segment, so a prefix
 * ending in one cuts keys mid-segment without ever equalling a key (that case has its own test).
 */
const PARTIALS = ["c", "c.", "x", "%"] as const;

/** Keys that break the key rules; both sides must reject them with the same code. */
const INVALID_KEYS = ["a//b", "/a", "a/", "..", "a\u0000"] as const;

/** One operation inside a transaction. */
export type TxOperation =
  | { kind: "put"; key: string; value: Uint8Array }
  | { kind: "get" | "delete" | "exists"; key: string }
  | { kind: "list"; prefix: string }
  | { kind: "listPage"; prefix: string; after: string; limit: number };

/** One operation of a differential run. */
export type Operation =
  | TxOperation
  | { kind: "scan"; prefix: string }
  | { kind: "transaction"; operations: TxOperation[]; rollBack: boolean; readOnly: boolean };

const validKey = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 3 }).map((s) => s.join("/"));
const key = fc.oneof({ arbitrary: validKey, weight: 30 }, { arbitrary: fc.constantFrom(...INVALID_KEYS), weight: 1 });
const folder = fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 2 }).map((s) => `${s.join("/")}/`);
const prefix = fc.oneof(
  fc.constant(""),
  folder,
  fc.tuple(fc.oneof(fc.constant(""), folder), fc.constantFrom(...PARTIALS)).map(([f, p]) => f + p),
);
// Cursors: entries (leaves and folders), partial names, and keys below a folder.
const after = fc.oneof(
  fc.constant(""),
  fc.constantFrom(...SEGMENTS),
  fc.constantFrom(...SEGMENTS).map((s) => `${s}/`),
  fc.constantFrom(...PARTIALS),
  validKey,
);
const limit = fc.integer({ min: -1, max: 4 });
const value = fc.uint8Array({ maxLength: 8 });

const txOperation: fc.Arbitrary<TxOperation> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant("put" as const), key, value }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant("delete" as const), key }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constantFrom("get" as const, "exists" as const), key }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant("list" as const), prefix }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant("listPage" as const), prefix, after, limit }), weight: 1 },
);

/** A random operation: mostly plain calls, sometimes a small transaction that may roll back. */
export const operationArbitrary: fc.Arbitrary<Operation> = fc.oneof(
  { arbitrary: txOperation, weight: 10 },
  { arbitrary: fc.record({ kind: fc.constant("scan" as const), prefix }), weight: 1 },
  {
    arbitrary: fc.record({
      kind: fc.constant("transaction" as const),
      operations: fc.array(txOperation, { maxLength: 6 }),
      rollBack: fc.boolean(),
      readOnly: fc.boolean().chain((b) => (b ? fc.boolean() : fc.constant(false))),
    }),
    weight: 2,
  },
);

/** A random set of valid keys, for the page-walk property. */
export const keySetArbitrary: fc.Arbitrary<string[]> = fc.uniqueArray(validKey, { minLength: 1, maxLength: 40 });

/** A random `listPage` query. */
export const pageQueryArbitrary = fc.record({ prefix, after, limit });

/** Thrown by a transaction callback to roll back; recognised by identity. */
const ROLL_BACK = new Error("differential roll back");

/** What an operation did, in a comparable, printable form. */
export type Outcome = { ok: unknown } | { error: string };

function normalise(result: unknown): unknown {
  if (result instanceof Uint8Array) return `hex:${hexOrNull(result)}`;
  if (Array.isArray(result)) return result.map(normalise);
  return result === undefined ? "void" : result;
}

async function outcomeOf(call: () => Promise<unknown>): Promise<Outcome> {
  try {
    return { ok: normalise(await call()) };
  } catch (error) {
    if (error === ROLL_BACK) return { error: "rolled back" };
    if (StorageError.isInstance(error)) return { error: error.code };
    return { error: `unexpected ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}` };
  }
}

function runTxOperation(target: StorageBackend | Transaction, op: TxOperation): Promise<unknown> {
  switch (op.kind) {
    case "put":
      return target.put(op.key, op.value);
    case "get":
      return target.get(op.key);
    case "delete":
      return target.delete(op.key);
    case "exists":
      return target.exists(op.key);
    case "list":
      return target.list(op.prefix);
    case "listPage":
      return target.listPage(op.prefix, op.after, op.limit);
  }
}

/**
 * Runs one operation and describes what happened. A transaction's outcome includes each inner
 * operation's outcome from the callback's last attempt (a backend may retry the callback).
 */
export async function runOperation(backend: StorageBackend, op: Operation): Promise<Outcome | { inner: Outcome[]; outcome: Outcome }> {
  if (op.kind === "scan") {
    return outcomeOf(async () => (await collectScan(backend, op.prefix)).map((e) => [e.key, `hex:${hexOrNull(e.value)}`]));
  }
  if (op.kind !== "transaction") return outcomeOf(() => runTxOperation(backend, op));
  let inner: Outcome[] = [];
  const outcome = await outcomeOf(() =>
    backend.transaction(
      async (tx) => {
        inner = [];
        for (const innerOp of op.operations) {
          inner.push(ambiguityFree(op.readOnly, innerOp, await outcomeOf(() => runTxOperation(tx, innerOp))));
        }
        if (op.rollBack) throw ROLL_BACK;
        return inner.length;
      },
      { readOnly: op.readOnly },
    ),
  );
  return { inner, outcome };
}

/**
 * A write with an invalid key in a read-only transaction breaks two rules; which one a backend
 * checks first is its own business, so either code is accepted.
 */
function ambiguityFree(readOnly: boolean, op: TxOperation, outcome: Outcome): Outcome {
  const write = op.kind === "put" || op.kind === "delete";
  const invalid = "key" in op && (INVALID_KEYS as readonly string[]).includes(op.key);
  if (readOnly && write && invalid && "error" in outcome && (outcome.error === "INVALID_KEY" || outcome.error === "READ_ONLY")) {
    return { error: "INVALID_KEY or READ_ONLY" };
  }
  return outcome;
}

/** The whole content of a backend, for comparing end states. */
export async function snapshotOf(backend: StorageBackend): Promise<[string, string | null][]> {
  return (await collectScan(backend, "")).map((e) => [e.key, hexOrNull(e.value)]);
}

/** How many operations `op` stands for in the operation count (a transaction counts its inner ones too). */
export function operationCount(op: Operation): number {
  return op.kind === "transaction" ? 1 + op.operations.length : 1;
}
