import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteBackend } from "@egide/storage-sqlite";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { TokenStore } from "../src/auth/token-store.js";
import { VaultError } from "../src/http/vault-error.js";
import { durationSecondMs, parseWrapTtlHeader } from "../src/wrapping/wrap-ttl.js";
import { WrappedResponseSweeper } from "../src/wrapping/wrapped-response-sweeper.js";
import {
  discardWrappedResponse,
  findWrappedResponse,
  storeWrappedResponse,
  wrappedResponseKey,
} from "../src/wrapping/wrapped-response-store.js";

// The wrap TTL parser, and the wrapped responses' storage and sweeping over a real SQLite file.

function headerError(value: string): string {
  try {
    parseWrapTtlHeader(value);
  } catch (error) {
    expect(error).toBeInstanceOf(VaultError);
    expect((error as VaultError).status).toBe(400);
    return (error as VaultError).errors.join("; ");
  }
  throw new Error(`${value} was accepted`);
}

describe("X-Vault-Wrap-TTL (Vault's ParseDurationSecond)", () => {
  it("reads seconds and Go durations, in ms; absent or empty is no wrapping", () => {
    expect(parseWrapTtlHeader(undefined)).toBeUndefined();
    expect(parseWrapTtlHeader("")).toBeUndefined();
    expect(parseWrapTtlHeader("300")).toBe(300_000);
    expect(parseWrapTtlHeader("5m")).toBe(300_000);
    expect(parseWrapTtlHeader("1h30m")).toBe(5_400_000);
    expect(parseWrapTtlHeader("1.5s")).toBe(1500);
    expect(parseWrapTtlHeader("2d")).toBe(172_800_000);
    expect(durationSecondMs(90)).toBe(90_000);
  });

  it("refuses what is not a positive duration of at least a second, with Vault's messages", () => {
    expect(headerError("abc")).toBe('error parsing X-Vault-Wrap-TTL header: time: invalid duration "abc"');
    expect(headerError("5x")).toBe('error parsing X-Vault-Wrap-TTL header: time: invalid duration "5x"');
    expect(headerError("1.5")).toBe('error parsing X-Vault-Wrap-TTL header: time: invalid duration "1.5"');
    expect(headerError("-10")).toBe("error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative");
    expect(headerError("-1m")).toBe("error parsing X-Vault-Wrap-TTL header: requested wrap ttl cannot be negative");
    expect(headerError("0")).toBe("error parsing X-Vault-Wrap-TTL header: requested wrap ttl must be at least 1s");
    expect(headerError("0s")).toBe("error parsing X-Vault-Wrap-TTL header: requested wrap ttl must be at least 1s");
    expect(headerError("500ms")).toBe("error parsing X-Vault-Wrap-TTL header: requested wrap ttl must be at least 1s");
    expect(headerError(`${"1".repeat(65)}s`)).toMatch(/^error parsing X-Vault-Wrap-TTL header: time: invalid duration/);
  });

  it("parses a long hostile value in linear time", () => {
    const started = performance.now();
    expect(headerError(`${"1.".repeat(30)}x`)).toMatch(/invalid duration/);
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe("wrapped responses in storage", () => {
  let dir: string;
  let storage: SqliteBackend;
  let tokens: TokenStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "egide-wrapping-store-"));
    storage = SqliteBackend.open({ path: join(dir, "egide.db") });
    tokens = new TokenStore(storage);
  });
  afterEach(async () => {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const wrap = (ttlMs: number, now = Date.now()) =>
    storage.transaction((tx) => storeWrappedResponse(tx, tokens, { response: '{"data":{"a":1}}', ttlMs, creationPath: "x/y" }, now));

  it("stores the response under a one-use, orphan, non-renewable response-wrapping token", async () => {
    const info = await wrap(60_000);
    const entry = await tokens.lookup(info.token);
    expect(entry).toMatchObject({ policies: ["response-wrapping"], numUses: 1, renewable: false, parentAccessor: null, path: "x/y" });
    expect(entry?.creationTtlMs).toBe(60_000);
    expect(entry?.maxExpiresAt).toBe(entry?.expiresAt);
    const found = await findWrappedResponse(storage, tokens, info.token);
    expect(found?.stored.response).toBe('{"data":{"a":1}}');
    // The stored bytes hold no token.
    const raw = await storage.get(wrappedResponseKey(info.accessor));
    expect(raw?.toString("utf8")).not.toContain(info.token.slice(4));
    await storage.transaction((tx) => discardWrappedResponse(tx, tokens, info.accessor));
    expect(await findWrappedResponse(storage, tokens, info.token)).toBeNull();
    expect(await tokens.lookup(info.token)).toBeNull();
    expect(await storage.get(wrappedResponseKey(info.accessor))).toBeNull();
  });

  it("a token that is not a wrapping token finds nothing", async () => {
    const other = await storage.transaction((tx) =>
      tokens.create(tx, { policies: ["default"], displayName: "t", ttlMs: 60_000, maxTtlMs: 0, renewable: false, parentAccessor: null }),
    );
    expect(await findWrappedResponse(storage, tokens, other.token)).toBeNull();
  });

  it("the sweeper deletes expired and orphaned wrapped responses (and their tokens), and keeps live ones", async () => {
    const now = Date.now();
    const live = await wrap(3_600_000, now);
    const expired = await wrap(1000, now - 5000);
    const orphaned = await wrap(3_600_000, now);
    await storage.transaction((tx) => tokens.revokeAccessor(tx, orphaned.accessor));
    const sweeper = new WrappedResponseSweeper(storage, tokens);
    expect(await sweeper.sweep(now)).toBe(2);
    expect(await storage.get(wrappedResponseKey(expired.accessor))).toBeNull();
    expect(await storage.get(wrappedResponseKey(orphaned.accessor))).toBeNull();
    expect(await tokens.lookupAccessor(expired.accessor, storage, now - 5000)).toBeNull();
    expect(await findWrappedResponse(storage, tokens, live.token, now)).not.toBeNull();
    expect(await sweeper.sweep(now)).toBe(0);
  });
});
