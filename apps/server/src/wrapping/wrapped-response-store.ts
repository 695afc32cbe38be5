import type { Transaction } from "@egide/storage-core";
import type { TokenEntry, TokenStore } from "../auth/token-store.js";
import { vaultTimestamp } from "../kv/kv-time.js";
import { RESPONSE_WRAPPING_POLICY_NAME } from "../policy/policy.js";
import { isWrappingTokenEntry } from "./wrapping-token.js";

/**
 * Where wrapped responses are kept (Vault's cubbyhole of the wrapping token), through the
 * encrypting barrier: one entry per wrapping token, keyed by the token's accessor.
 */
export const WRAPPED_RESPONSE_PREFIX = "sys/wrapping/response/";

/** A wrapped response as stored. */
export interface WrappedResponse {
  /** The original response body, exactly as it would have been answered (JSON text). */
  response: string;
  /** The wrapping token's TTL, ms. */
  creationTtlMs: number;
  /** When it was wrapped, ms since the epoch. */
  createdAt: number;
  /** The path of the request whose response this is (kept across rewraps). */
  creationPath: string;
  /** When the wrapping token expires, ms since the epoch. */
  expiresAt: number;
  /** The accessor of the token the wrapped response created, if it did. */
  wrappedAccessor?: string;
}

/** Vault's `wrap_info` (`logical.HTTPWrapInfo`). */
export interface WrapInfo {
  token: string;
  accessor: string;
  /** Seconds. */
  ttl: number;
  creation_time: string;
  creation_path: string;
  wrapped_accessor?: string;
}

/** What {@link storeWrappedResponse} wraps. */
export interface ResponseToWrap {
  response: string;
  ttlMs: number;
  creationPath: string;
  wrappedAccessor?: string | undefined;
}

/** The storage key of the wrapped response of the wrapping token with `accessor`. */
export function wrappedResponseKey(accessor: string): string {
  return WRAPPED_RESPONSE_PREFIX + accessor;
}

/**
 * Creates a response-wrapping token (an orphan, policy `response-wrapping` only, one use, TTL
 * and explicit maximum the wrap TTL, not renewable) and stores `wrap.response` under it, both
 * inside `tx`. Returns the `wrap_info` to answer instead of the response.
 */
export async function storeWrappedResponse(
  tx: Transaction,
  tokens: Pick<TokenStore, "create">,
  wrap: ResponseToWrap,
  now = Date.now(),
): Promise<WrapInfo> {
  const { token, entry } = await tokens.create(
    tx,
    {
      policies: [RESPONSE_WRAPPING_POLICY_NAME],
      displayName: "response-wrapping",
      ttlMs: wrap.ttlMs,
      maxTtlMs: wrap.ttlMs,
      renewable: false,
      parentAccessor: null,
      numUses: 1,
      path: wrap.creationPath,
    },
    now,
  );
  const stored: WrappedResponse = {
    response: wrap.response,
    creationTtlMs: wrap.ttlMs,
    createdAt: now,
    creationPath: wrap.creationPath,
    expiresAt: now + wrap.ttlMs,
    ...(wrap.wrappedAccessor ? { wrappedAccessor: wrap.wrappedAccessor } : {}),
  };
  await tx.put(wrappedResponseKey(entry.accessor), Buffer.from(JSON.stringify(stored), "utf8"));
  return {
    token,
    accessor: entry.accessor,
    ttl: Math.floor(wrap.ttlMs / 1000),
    creation_time: vaultTimestamp(now),
    creation_path: wrap.creationPath,
    ...(wrap.wrappedAccessor ? { wrapped_accessor: wrap.wrappedAccessor } : {}),
  };
}

/**
 * The live wrapping token `token` and its wrapped response, read through `reader`; `null` when
 * the token is unknown, expired, used, not a wrapping token, or holds no response.
 */
export async function findWrappedResponse(
  reader: Pick<Transaction, "get">,
  tokens: Pick<TokenStore, "lookup">,
  token: string,
  now = Date.now(),
): Promise<{ entry: TokenEntry; stored: WrappedResponse } | null> {
  const entry = await tokens.lookup(token, reader, now);
  if (entry === null || !isWrappingTokenEntry(entry)) return null;
  const raw = await reader.get(wrappedResponseKey(entry.accessor));
  if (raw === null) return null;
  const stored = JSON.parse(raw.toString("utf8")) as WrappedResponse;
  return stored.expiresAt > now ? { entry, stored } : null;
}

/** Deletes the wrapped response of the wrapping token with `accessor`, and the token, inside `tx`. */
export async function discardWrappedResponse(tx: Transaction, tokens: Pick<TokenStore, "revokeAccessor">, accessor: string): Promise<void> {
  await tx.delete(wrappedResponseKey(accessor));
  await tokens.revokeAccessor(tx, accessor);
}

/** Vault's answer to a wrapped request: the usual envelope, empty, with `wrap_info`. */
export function wrappedEnvelope(requestId: string, wrapInfo: WrapInfo) {
  return {
    request_id: requestId,
    lease_id: "",
    renewable: false,
    lease_duration: 0,
    data: null,
    wrap_info: wrapInfo,
    warnings: null,
    auth: null,
  };
}
