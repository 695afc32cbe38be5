import { createHash } from "node:crypto";

/**
 * Largest payload sent, in bytes of UTF-8: PostgreSQL refuses payloads of 8000 bytes or more,
 * and this leaves room. A change whose keys do not fit is sent with `"k": null` ("anything may
 * have changed"), which every consumer handles by flushing.
 */
export const MAX_NOTIFY_PAYLOAD_BYTES = 7900;

/** PostgreSQL's NAMEDATALEN − 1: longer channel names are truncated by LISTEN, refused by pg_notify. */
const MAX_CHANNEL_BYTES = 63;
const CHANNEL_PREFIX = "egide_changes_";

/** What one notification says: who committed, when, and which keys (`null`: unknown). */
export interface ChangeNotification {
  /** The origin id of the backend object that committed. */
  origin: string;
  /** The writer's `Date.now()` at commit. */
  committedAt: number;
  keys: readonly string[] | null;
}

/**
 * The NOTIFY channel of a schema's changes: `egide_changes_<schema>`. Notifications are per
 * database, so the schema is what tells two Egide installations in one database apart. A schema
 * name too long for the 63-byte limit is shortened and suffixed with a digest of the whole
 * name, so two long schemas never share a channel. Schema names are checked lower-case
 * identifiers, so the result is one too (safe to quote or to write as a literal).
 */
export function changeChannel(schema: string): string {
  const plain = `${CHANNEL_PREFIX}${schema}`;
  if (plain.length <= MAX_CHANNEL_BYTES) return plain;
  const digest = createHash("sha256").update(schema).digest("hex").slice(0, 12);
  return `${plain.slice(0, MAX_CHANNEL_BYTES - digest.length - 1)}_${digest}`;
}

/**
 * The payload of a notification, `{"o": origin, "t": committedAt, "k": keys}`, with `"k": null`
 * when the keys would take it past {@link MAX_NOTIFY_PAYLOAD_BYTES}.
 */
export function encodeChange(origin: string, committedAt: number, keys: readonly string[]): string {
  const unknown = () => JSON.stringify({ o: origin, t: committedAt, k: null });
  // A lower bound of the size first (a key's UTF-16 length never exceeds its UTF-8 bytes, and
  // JSON quotes it), so that a bulk load of many keys is not serialised only to be dropped.
  let atLeast = 0;
  for (const key of keys) {
    atLeast += key.length + 3;
    if (atLeast > MAX_NOTIFY_PAYLOAD_BYTES) return unknown();
  }
  const payload = JSON.stringify({ o: origin, t: committedAt, k: keys });
  return Buffer.byteLength(payload, "utf8") <= MAX_NOTIFY_PAYLOAD_BYTES ? payload : unknown();
}

/**
 * Reads a payload defensively: anything that is not a well-formed change (another program's
 * NOTIFY on the channel, a future format) reads as "unknown keys, now, from nobody", so the
 * consumer flushes rather than missing a change.
 */
export function decodeChange(payload: string | undefined, now: number = Date.now()): ChangeNotification {
  const unknown: ChangeNotification = { origin: "", committedAt: now, keys: null };
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload ?? "");
  } catch {
    return unknown;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) return unknown;
  const { o, t, k } = parsed as Record<string, unknown>;
  if (typeof o !== "string") return unknown;
  const committedAt = typeof t === "number" && Number.isFinite(t) ? t : now;
  if (k === null) return { origin: o, committedAt, keys: null };
  if (!Array.isArray(k) || !k.every((key): key is string => typeof key === "string")) return { origin: o, committedAt, keys: null };
  return { origin: o, committedAt, keys: [...new Set(k)] };
}
