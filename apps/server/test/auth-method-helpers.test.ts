import { describe, expect, it } from "vitest";
import { appRoleRoute } from "../src/auth-methods/approle/approle-backend.js";
import { isValidName, parsePolicyList, parseSeconds } from "../src/auth-methods/auth-method-input.js";
import { addressInCidrs, cidrsWithin, parseCidrList } from "../src/auth-methods/cidr-list.js";
import { HashLimiter } from "../src/auth-methods/hash-limiter.js";
import { dummyPasswordHash, hashPassword, isPasswordHash, verifyPassword } from "../src/auth-methods/password-hash.js";
import { userpassRoute } from "../src/auth-methods/userpass/userpass-backend.js";
import { VaultError } from "../src/http/vault-error.js";

// The auth methods' building blocks, without a server: the password hash, the hash semaphore,
// CIDR blocks, names and the path routers.

describe("password hashes", () => {
  it("verifies the right password only, and stores parameters, salt and key but never the password", async () => {
    const stored = await hashPassword("s3cret-pass");
    expect(stored).toMatchObject({ N: 32768, r: 8, p: 1 });
    expect(Buffer.from(stored.salt, "base64")).toHaveLength(16);
    expect(JSON.stringify(stored)).not.toContain("s3cret-pass");
    expect(await verifyPassword("s3cret-pass", stored)).toBe(true);
    expect(await verifyPassword("s3cret-pasS", stored)).toBe(false);
    expect(await verifyPassword("s3cret-pass", dummyPasswordHash())).toBe(false);
    // the same password twice: different salts, different keys
    const again = await hashPassword("s3cret-pass");
    expect(again.salt).not.toBe(stored.salt);
    expect(again.hash).not.toBe(stored.hash);
  });

  it("refuses stored parameters it would not run", () => {
    const good = dummyPasswordHash();
    expect(isPasswordHash(good)).toBe(true);
    expect(isPasswordHash({ ...good, N: 2 ** 24 })).toBe(false);
    expect(isPasswordHash({ ...good, N: 30000 })).toBe(false);
    expect(isPasswordHash({ ...good, r: 0 })).toBe(false);
    expect(isPasswordHash({ ...good, salt: 1 })).toBe(false);
    expect(isPasswordHash(null)).toBe(false);
  });
});

describe("HashLimiter", () => {
  it("runs at most `concurrency` at once, queues at most `maxQueue`, and refuses the rest with 429", async () => {
    let running = 0;
    let peak = 0;
    let ran = 0;
    let refused = 0;
    const limiter = new HashLimiter({ concurrency: 2, maxQueue: 3, onRun: () => ran++, onRefuse: () => refused++ });
    const release: Array<() => void> = [];
    const task = () =>
      limiter.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => release.push(resolve));
        running -= 1;
        return "done";
      });
    const results = Array.from({ length: 8 }, () =>
      task().then(
        (value) => value,
        (error: unknown) => error,
      ),
    );
    await new Promise((resolve) => setImmediate(resolve));
    expect(running).toBe(2);
    expect(refused).toBe(3);
    // release everything, one at a time as slots pass on
    while (ran < 5 || release.length > 0) {
      const next = release.shift();
      if (next) next();
      await new Promise((resolve) => setImmediate(resolve));
    }
    const settled = await Promise.all(results);
    expect(settled.filter((r) => r === "done")).toHaveLength(5);
    const errors = settled.filter((r) => r instanceof VaultError) as VaultError[];
    expect(errors.map((e) => e.status)).toEqual([429, 429, 429]);
    expect(peak).toBe(2);
    expect(running).toBe(0);
    // the slots were all given back
    expect(await limiter.run(async () => "again")).toBe("again");
  });

  it("gives the slot back when the task fails", async () => {
    const limiter = new HashLimiter({ concurrency: 1, maxQueue: 0 });
    await expect(limiter.run(async () => Promise.reject(new Error("boom")))).rejects.toThrow("boom");
    expect(await limiter.run(async () => 1)).toBe(1);
  });
});

describe("CIDR blocks", () => {
  it("parses lists and comma-separated strings, and refuses what is not a block", () => {
    expect(parseCidrList("10.0.0.0/8, 127.0.0.1", "x")).toEqual(["10.0.0.0/8", "127.0.0.1/32"]);
    expect(parseCidrList(["::1/128"], "x")).toEqual(["::1/128"]);
    for (const bad of ["10.0.0.0/33", "10.0.0/8", "a.b.c.d/8", "10.0.0.0/-1", "10.0.0.0/8/8", "::1/129", "10.0.0.0/"]) {
      expect(() => parseCidrList(bad, "x"), bad).toThrow(VaultError);
    }
  });

  it("matches client addresses, IPv4-mapped ones included", () => {
    expect(addressInCidrs("127.0.0.1", ["10.0.0.0/8"])).toBe(false);
    expect(addressInCidrs("10.200.3.4", ["10.0.0.0/8"])).toBe(true);
    expect(addressInCidrs("::ffff:10.1.2.3", ["10.0.0.0/8"])).toBe(true);
    expect(addressInCidrs("::1", ["127.0.0.0/8"])).toBe(false);
    expect(addressInCidrs("not-an-ip", ["0.0.0.0/0"])).toBe(false);
  });

  it("checks that a secret id's blocks lie inside the role's", () => {
    expect(cidrsWithin(["10.1.0.0/16"], ["10.0.0.0/8"])).toBe(true);
    expect(cidrsWithin(["10.0.0.0/8"], ["10.1.0.0/16"])).toBe(false);
    expect(cidrsWithin(["127.0.0.1/32"], ["10.0.0.0/8"])).toBe(false);
    expect(cidrsWithin(["127.0.0.1/32"], [])).toBe(true);
  });
});

describe("names, durations, policies", () => {
  it("accepts Vault's generic names only, up to 128 characters", () => {
    for (const good of ["app", "a", "my-app.v2", "x_y", "a@b"]) expect(isValidName(good, true), good).toBe(true);
    for (const bad of ["", "-a", "a-", ".a", "a/b", "a b", "é", "x".repeat(129)]) expect(isValidName(bad, true), bad).toBe(false);
    // `@` only where the name allows it (AppRole roles, not usernames)
    expect(isValidName("a@b")).toBe(false);
    expect(isValidName("x".repeat(128))).toBe(true);
  });

  it("reads durations as Vault does and never turns garbage into 0", () => {
    expect(parseSeconds(undefined, "t")).toBe(0);
    expect(parseSeconds(90, "t")).toBe(90);
    expect(parseSeconds("90", "t")).toBe(90);
    expect(parseSeconds("1h30m", "t")).toBe(5400);
    for (const bad of [-1, 1.5, "x", "1y", true, {}]) expect(() => parseSeconds(bad, "t"), String(bad)).toThrow(VaultError);
  });

  it("canonicalises policy lists and refuses root", () => {
    expect(parsePolicyList("B,a, a", "p")).toEqual(["a", "b"]);
    expect(() => parsePolicyList(["root"], "p")).toThrow(/root/);
    expect(() => parsePolicyList([1], "p")).toThrow(VaultError);
  });
});

describe("path routers", () => {
  it("reads AppRole paths", () => {
    expect(appRoleRoute("login")).toEqual({ kind: "login", name: "" });
    expect(appRoleRoute("role/")).toEqual({ kind: "roles", name: "" });
    expect(appRoleRoute("role/web")).toEqual({ kind: "role", name: "web" });
    expect(appRoleRoute("role/login")).toEqual({ kind: "role", name: "login" });
    expect(appRoleRoute("role/web/secret-id/")).toEqual({ kind: "secretId", name: "web" });
    expect(appRoleRoute("role/web/secret-id-accessor/destroy")).toEqual({ kind: "accessorDestroy", name: "web" });
    for (const none of ["", "login/x", "role/web/nothing", "role/../x", "role/a b", "roles"]) expect(appRoleRoute(none), none).toBeNull();
  });

  it("reads userpass paths, lower-casing only the login's username", () => {
    expect(userpassRoute("login/Alice")).toEqual({ kind: "login", name: "alice" });
    expect(userpassRoute("users/")).toEqual({ kind: "users", name: "" });
    expect(userpassRoute("users/alice/password")).toEqual({ kind: "password", name: "alice" });
    expect(userpassRoute("users/login")).toEqual({ kind: "user", name: "login" });
    for (const none of ["login", "login/", "login/a/b", "users/Alice", "users/alice/x"]) expect(userpassRoute(none), none).toBeNull();
  });
});
