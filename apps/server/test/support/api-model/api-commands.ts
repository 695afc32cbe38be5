/**
 * The commands of the model-based API test: KV version 2, token and policy operations sent over
 * real HTTP to a real server, each compared with the reference model ({@link ApiModel}) before
 * the model is advanced. A command's `toString()` is what fast-check prints for a shrunk
 * counterexample, so it names everything needed to replay it.
 */
import fc from "fast-check";
import { expect } from "vitest";
import { call, type JsonBody } from "@egide/test-server";
import {
  type ModelKey,
  type ModelReadOutcome,
  modelDeleteLatest,
  modelDeleteMetadata,
  modelDeleteVersions,
  modelDestroy,
  modelRead,
  modelUndelete,
  modelWrite,
  modelWriteMetadata,
} from "./kv-model.js";
import {
  MODEL_POLICIES,
  type ModelCapability,
  type ModelPolicyName,
  type ModelToken,
  capabilitiesOf,
  modelRevoke,
  modelRevokeOrphan,
} from "./token-model.js";

/** The model's state: the run's KV keys, tokens (by creation order) and the capabilities policies `a` and `b` grant. */
export interface ApiModel {
  keys: Map<string, ModelKey>;
  tokens: ModelToken[];
  policies: Map<string, ModelCapability[]>;
}

/** The system under test: the server, and the real token strings of the model's tokens (same indexes). */
export interface ApiReal {
  url: string;
  rootToken: string;
  /** The run's unique prefix: KV keys live under `secret/data/<prefix>/`, policies are named `<prefix>-<name>`. */
  prefix: string;
  tokens: string[];
}

/** One generated operation. */
export type ApiCommand = fc.AsyncCommand<ApiModel, ApiReal>;

/** The KV keys a run touches (below its prefix); few, so that operations meet on the same key. */
export const MODEL_KEYS = ["k1", "d/k2"] as const;

/** The HCL of policy `name`'s capabilities on the run's KV prefix. */
export function policyText(prefix: string, capabilities: readonly string[]): string {
  return `path "secret/data/${prefix}/*" { capabilities = [${capabilities.map((c) => JSON.stringify(c)).join(", ")}] }`;
}

/** The HCL of the `creator` policy: may create child tokens. */
export function creatorPolicyText(): string {
  return `path "auth/token/create" { capabilities = ["update"] }`;
}

const request = (real: ApiReal, method: string, path: string, token: string, body?: unknown) =>
  call(real.url, method, `/v1/${path}`, { token, ...(body === undefined ? {} : { body }) });

const describeReply = (reply: { status: number; body: JsonBody }) => JSON.stringify({ status: reply.status, body: reply.body });

/** Compares a data read's answer with the model's outcome. */
function expectRead(reply: { status: number; body: JsonBody }, expected: ModelReadOutcome, label: string): void {
  const why = `${label}: ${describeReply(reply)} expected ${JSON.stringify(expected)}`;
  expect(reply.status, why).toBe(expected.status);
  if (expected.status === 200) {
    expect(reply.body.data.data, why).toEqual(expected.data);
    expect(reply.body.data.metadata.version, why).toBe(expected.version);
    expect(reply.body.data.metadata.deletion_time, why).toBe("");
    expect(reply.body.data.metadata.destroyed, why).toBe(false);
  } else if (expected.metadata === null) {
    expect(reply.body, why).toEqual({ errors: [] });
  } else {
    expect(reply.body.data.data, why).toBeNull();
    expect(reply.body.data.metadata.version, why).toBe(expected.metadata.version);
    expect(reply.body.data.metadata.deletion_time !== "", why).toBe(expected.metadata.deleted);
    expect(reply.body.data.metadata.destroyed, why).toBe(expected.metadata.destroyed);
  }
}

/** A write's answer against the model (which it advances when the write succeeds). */
function expectWrite(reply: { status: number; body: JsonBody }, model: ApiModel, key: string, data: Record<string, unknown>, cas?: number) {
  const expected = modelWrite(model.keys, key, data, cas);
  const why = `write ${key}: ${describeReply(reply)} expected ${JSON.stringify(expected)}`;
  expect(reply.status, why).toBe(expected.status);
  if (expected.status === 200) {
    expect(reply.body.data.version, why).toBe(expected.version);
    expect(reply.body.data.deletion_time, why).toBe("");
    expect(reply.body.data.destroyed, why).toBe(false);
  } else {
    expect(reply.body.errors, why).toEqual([expected.error]);
  }
}

/** A command with a label and a body; `needsTokens` ones wait until the run has a token. */
function command(label: string, needsTokens: boolean, run: (model: ApiModel, real: ApiReal) => Promise<void>): ApiCommand {
  return {
    check: (model) => !needsTokens || model.tokens.length > 0,
    run,
    toString: () => label,
  };
}

/** The `write` command (also used to replay a kept counterexample). */
export function writeCommand(key: string, data: Record<string, unknown>, cas?: number | "current"): ApiCommand {
  return command(`write(${key}, ${JSON.stringify(data)}, cas=${cas})`, false, async (model, real) => {
    const casValue = cas === "current" ? (model.keys.get(key)?.current ?? 0) : cas;
    const reply = await request(real, "POST", `secret/data/${real.prefix}/${key}`, real.rootToken, {
      data,
      ...(casValue === undefined ? {} : { options: { cas: casValue } }),
    });
    expectWrite(reply, model, key, data, casValue);
  });
}

/** The `read` command (also used to replay a kept counterexample). */
export function readCommand(key: string, version: number): ApiCommand {
  return command(`read(${key}, version=${version})`, false, async (model, real) => {
    const suffix = version === 0 ? "" : `?version=${version}`;
    const reply = await request(real, "GET", `secret/data/${real.prefix}/${key}${suffix}`, real.rootToken);
    expectRead(reply, modelRead(model.keys, key, version), `read ${key}@${version}`);
  });
}

/** The `deleteLatest` command (also used to replay a kept counterexample). */
export function deleteLatestCommand(key: string): ApiCommand {
  return command(`deleteLatest(${key})`, false, async (model, real) => {
    const reply = await request(real, "DELETE", `secret/data/${real.prefix}/${key}`, real.rootToken);
    expect(reply.status, describeReply(reply)).toBe(204);
    modelDeleteLatest(model.keys, key);
  });
}

/** The `delete`, `undelete` and `destroy` commands (also used to replay a kept counterexample). */
export function versionsCommand(op: "delete" | "undelete" | "destroy", key: string, versions: number[]): ApiCommand {
  return command(`${op}(${key}, ${JSON.stringify(versions)})`, false, async (model, real) => {
    const reply = await request(real, op === "destroy" ? "PUT" : "POST", `secret/${op}/${real.prefix}/${key}`, real.rootToken, {
      versions,
    });
    expect(reply.status, describeReply(reply)).toBe(204);
    if (op === "delete") modelDeleteVersions(model.keys, key, versions);
    else if (op === "undelete") modelUndelete(model.keys, key, versions);
    else modelDestroy(model.keys, key, versions);
  });
}

/** The `createToken` command (also used to replay a kept counterexample). */
export function createTokenCommand(parent: number | undefined, policies: ModelPolicyName[]): ApiCommand {
  return command(`createToken(parent=${parent ?? "root"}, ${JSON.stringify(policies)})`, false, async (model, real) => {
    const index = parent === undefined || model.tokens.length === 0 ? undefined : pick(model, parent);
    const caller = index === undefined ? real.rootToken : (real.tokens[index] as string);
    const reply = await request(real, "POST", "auth/token/create", caller, {
      policies: policies.map((p) => `${real.prefix}-${p}`),
      ttl: "24h",
    });
    const why = `createToken by ${index ?? "root"}: ${describeReply(reply)}`;
    if (index !== undefined) {
      const parentToken = model.tokens[index] as ModelToken;
      if (!parentToken.alive || !parentToken.policies.includes("creator")) {
        expect(reply.status, why).toBe(403);
        return;
      }
      if (!policies.every((p) => parentToken.policies.includes(p))) {
        expect(reply.status, why).toBe(400);
        return;
      }
    }
    expect(reply.status, why).toBe(200);
    expect([...reply.body.auth.policies].sort(), why).toEqual([...policies.map((p) => `${real.prefix}-${p}`), "default"].sort());
    expect(reply.body.auth.lease_duration, why).toBe(24 * 3600);
    model.tokens.push({ alive: true, parent: index ?? null, policies: [...policies] });
    real.tokens.push(reply.body.auth.client_token);
  });
}

/** The `lookup` command (also used to replay a kept counterexample). */
export function lookupCommand(token: number): ApiCommand {
  return command(`lookup(${token})`, true, async (model, real) => {
    const index = pick(model, token);
    const reply = await request(real, "POST", "auth/token/lookup", real.rootToken, { token: real.tokens[index] });
    const entry = model.tokens[index] as ModelToken;
    const why = `lookup ${index}: ${describeReply(reply)}`;
    if (!entry.alive) {
      // Vault answers a lookup of an unknown or revoked token 403 "bad token".
      expect({ status: reply.status, errors: reply.body?.errors }, why).toEqual({ status: 403, errors: ["bad token"] });
      return;
    }
    expect(reply.status, why).toBe(200);
    expect([...reply.body.data.policies].sort(), why).toEqual([...entry.policies.map((p) => `${real.prefix}-${p}`), "default"].sort());
  });
}

/** The `revokeOrphan` command (also used to replay a kept counterexample). */
export function revokeOrphanCommand(token: number): ApiCommand {
  return command(`revokeOrphan(${token})`, true, async (model, real) => {
    const index = pick(model, token);
    const reply = await request(real, "POST", "auth/token/revoke-orphan", real.rootToken, { token: real.tokens[index] });
    const alive = (model.tokens[index] as ModelToken).alive;
    expect(reply.status, `revokeOrphan ${index}: ${describeReply(reply)}`).toBe(alive ? 204 : 400);
    if (alive) modelRevokeOrphan(model.tokens, index);
  });
}

const keyArb = fc.constantFrom(...MODEL_KEYS);
const dataArb = fc.dictionary(fc.constantFrom("u", "p", "n"), fc.oneof(fc.string({ maxLength: 6 }), fc.integer(), fc.boolean()), {
  minKeys: 1,
  maxKeys: 2,
});
/** Version numbers: mostly the few a run reaches, sometimes beyond (ignored by Vault). */
const versionNumberArb = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 1, max: 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 5, max: 13 }) },
);
const versionsArb = fc.uniqueArray(versionNumberArb, { minLength: 1, maxLength: 3 });
/** A token of the run by position (taken modulo how many exist when the command runs). */
const tokenArb = fc.nat({ max: 15 });
const capabilitiesArb = fc.subarray(["read", "create", "update", "deny"] as ModelCapability[], { minLength: 1 });
const policyArb = fc.constantFrom<ModelPolicyName>("a", "b");

const pick = (model: ApiModel, index: number) => index % model.tokens.length;

const kvCommands = [
  fc
    .record({
      key: keyArb,
      data: dataArb,
      cas: fc.option(fc.oneof(fc.constant("current" as const), fc.integer({ min: 0, max: 12 })), { nil: undefined }),
    })
    .map(({ key, data, cas }) => writeCommand(key, data, cas)),
  fc.record({ key: keyArb, version: fc.oneof(fc.constant(0), versionNumberArb) }).map(({ key, version }) => readCommand(key, version)),
  keyArb.map((key) => deleteLatestCommand(key)),
  fc
    .record({ key: keyArb, versions: versionsArb, op: fc.constantFrom("delete", "undelete", "destroy") })
    .map(({ key, versions, op }) => versionsCommand(op, key, versions)),
  fc
    .record({
      key: keyArb,
      maxVersions: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
      casRequired: fc.option(fc.boolean(), { nil: undefined }),
    })
    .filter(({ maxVersions, casRequired }) => maxVersions !== undefined || casRequired !== undefined)
    .map(({ key, maxVersions, casRequired }) =>
      command(`writeMetadata(${key}, max_versions=${maxVersions}, cas_required=${casRequired})`, false, async (model, real) => {
        const body = {
          ...(maxVersions === undefined ? {} : { max_versions: maxVersions }),
          ...(casRequired === undefined ? {} : { cas_required: casRequired }),
        };
        const reply = await request(real, "POST", `secret/metadata/${real.prefix}/${key}`, real.rootToken, body);
        expect(reply.status, describeReply(reply)).toBe(204);
        modelWriteMetadata(model.keys, key, maxVersions, casRequired);
      }),
    ),
  keyArb.map((key) =>
    command(`deleteMetadata(${key})`, false, async (model, real) => {
      const reply = await request(real, "DELETE", `secret/metadata/${real.prefix}/${key}`, real.rootToken);
      expect(reply.status, describeReply(reply)).toBe(204);
      modelDeleteMetadata(model.keys, key);
    }),
  ),
  keyArb.map((key) =>
    command(`readMetadata(${key})`, false, async (model, real) => {
      const reply = await request(real, "GET", `secret/metadata/${real.prefix}/${key}`, real.rootToken);
      const expected = model.keys.get(key);
      const why = `readMetadata ${key}: ${describeReply(reply)}`;
      if (expected === undefined) {
        expect(reply.status, why).toBe(404);
        return;
      }
      expect(reply.status, why).toBe(200);
      const data = reply.body.data;
      expect(
        {
          current: data.current_version,
          oldest: data.oldest_version,
          maxVersions: data.max_versions,
          casRequired: data.cas_required,
          versions: Object.fromEntries(
            Object.entries(data.versions as Record<string, { deletion_time: string; destroyed: boolean }>).map(([n, v]) => [
              n,
              { deleted: v.deletion_time !== "", destroyed: v.destroyed },
            ]),
          ),
        },
        why,
      ).toEqual({
        current: expected.current,
        oldest: expected.oldest,
        maxVersions: expected.maxVersions,
        casRequired: expected.casRequired,
        versions: Object.fromEntries([...expected.versions].map(([n, v]) => [String(n), { deleted: v.deleted, destroyed: v.destroyed }])),
      });
    }),
  ),
];

const tokenCommands = [
  fc
    .record({ parent: fc.option(tokenArb, { nil: undefined }), policies: fc.subarray([...MODEL_POLICIES], { minLength: 1 }) })
    .map(({ parent, policies }) => createTokenCommand(parent, policies)),
  tokenArb.map((token) =>
    command(`lookupSelf(${token})`, true, async (model, real) => {
      const index = pick(model, token);
      const reply = await request(real, "GET", "auth/token/lookup-self", real.tokens[index] as string);
      const entry = model.tokens[index] as ModelToken;
      expect(reply.status, `lookupSelf ${index}: ${describeReply(reply)}`).toBe(entry.alive ? 200 : 403);
    }),
  ),
  tokenArb.map((token) => lookupCommand(token)),
  tokenArb.map((token) =>
    command(`revoke(${token})`, true, async (model, real) => {
      const index = pick(model, token);
      const reply = await request(real, "POST", "auth/token/revoke", real.rootToken, { token: real.tokens[index] });
      expect(reply.status, `revoke ${index}: ${describeReply(reply)}`).toBe(204);
      if ((model.tokens[index] as ModelToken).alive) modelRevoke(model.tokens, index);
    }),
  ),
  tokenArb.map((token) =>
    command(`revokeSelf(${token})`, true, async (model, real) => {
      const index = pick(model, token);
      const reply = await request(real, "POST", "auth/token/revoke-self", real.tokens[index] as string);
      const alive = (model.tokens[index] as ModelToken).alive;
      expect(reply.status, `revokeSelf ${index}: ${describeReply(reply)}`).toBe(alive ? 204 : 403);
      if (alive) modelRevoke(model.tokens, index);
    }),
  ),
  tokenArb.map((token) => revokeOrphanCommand(token)),
  tokenArb.map((token) =>
    command(`renew(${token})`, true, async (model, real) => {
      const index = pick(model, token);
      const reply = await request(real, "POST", "auth/token/renew", real.rootToken, { token: real.tokens[index], increment: "1h" });
      const alive = (model.tokens[index] as ModelToken).alive;
      const why = `renew ${index}: ${describeReply(reply)}`;
      expect(reply.status, why).toBe(alive ? 200 : 400);
      if (alive) expect(reply.body.auth.lease_duration, why).toBe(3600);
    }),
  ),
];

const policyCommands = [
  fc.record({ name: policyArb, capabilities: capabilitiesArb }).map(({ name, capabilities }) =>
    command(`writePolicy(${name}, ${JSON.stringify(capabilities)})`, false, async (model, real) => {
      const reply = await request(real, "PUT", `sys/policies/acl/${real.prefix}-${name}`, real.rootToken, {
        policy: policyText(real.prefix, capabilities),
      });
      expect(reply.status, describeReply(reply)).toBe(204);
      model.policies.set(name, [...capabilities]);
    }),
  ),
  policyArb.map((name) =>
    command(`deletePolicy(${name})`, false, async (model, real) => {
      const reply = await request(real, "DELETE", `sys/policies/acl/${real.prefix}-${name}`, real.rootToken);
      expect(reply.status, describeReply(reply)).toBe(204);
      model.policies.delete(name);
    }),
  ),
  fc.record({ token: tokenArb, key: keyArb }).map(({ token, key }) =>
    command(`tokenRead(${token}, ${key})`, true, async (model, real) => {
      const index = pick(model, token);
      const entry = model.tokens[index] as ModelToken;
      const reply = await request(real, "GET", `secret/data/${real.prefix}/${key}`, real.tokens[index] as string);
      if (!entry.alive || !capabilitiesOf(entry, model.policies).has("read")) {
        expect(reply.status, `tokenRead ${index} ${key}: ${describeReply(reply)}`).toBe(403);
        return;
      }
      expectRead(reply, modelRead(model.keys, key, 0), `tokenRead ${index} ${key}`);
    }),
  ),
  fc.record({ token: tokenArb, key: keyArb, data: dataArb }).map(({ token, key, data }) =>
    command(`tokenWrite(${token}, ${key}, ${JSON.stringify(data)})`, true, async (model, real) => {
      const index = pick(model, token);
      const entry = model.tokens[index] as ModelToken;
      const reply = await request(real, "POST", `secret/data/${real.prefix}/${key}`, real.tokens[index] as string, { data });
      // Vault's existence check: a key with metadata needs update, a new one create.
      const needed: ModelCapability = model.keys.has(key) ? "update" : "create";
      if (!entry.alive || !capabilitiesOf(entry, model.policies).has(needed)) {
        expect(reply.status, `tokenWrite ${index} ${key} (needs ${needed}): ${describeReply(reply)}`).toBe(403);
        return;
      }
      expectWrite(reply, model, key, data);
    }),
  ),
];

/**
 * The generated command sequences: KV operations weighted up (they have the most state), then
 * token and policy operations. At most `maxCommands` per run.
 */
export function apiCommandsArbitrary(maxCommands: number): fc.Arbitrary<Iterable<ApiCommand>> {
  const [write, read, , versionOps, , , readMetadata] = kvCommands as Array<fc.Arbitrary<ApiCommand>>;
  const weighted = [
    ...kvCommands,
    // fast-check picks among these uniformly: repeats weight writes, reads and version operations up.
    ...[write, read, write, read, versionOps, versionOps, readMetadata].map((arbitrary) => arbitrary as fc.Arbitrary<ApiCommand>),
    ...tokenCommands,
    ...policyCommands,
    ...policyCommands.slice(2),
  ];
  return fc.commands(weighted, {
    maxCommands,
    // Long sequences: the interesting states (trimmed windows, revoked subtrees) need many steps.
    size: "max",
  });
}

/** The model and the real side at the start of a run, after the run's policies are written. */
export async function startRun(url: string, rootToken: string, prefix: string): Promise<{ model: ApiModel; real: ApiReal }> {
  const initial: Array<[string, string]> = [
    ["creator", creatorPolicyText()],
    ["a", policyText(prefix, ["read"])],
    ["b", policyText(prefix, ["create", "update"])],
  ];
  for (const [name, text] of initial) {
    const reply = await call(url, "PUT", `/v1/sys/policies/acl/${prefix}-${name}`, { token: rootToken, body: { policy: text } });
    expect(reply.status, describeReply(reply)).toBe(204);
  }
  // Two tokens from the start, so that token commands have something to act on from the first step.
  const tokens: ModelToken[] = [
    { alive: true, parent: null, policies: ["creator", "a"] },
    { alive: true, parent: null, policies: ["b"] },
  ];
  const realTokens: string[] = [];
  for (const token of tokens) {
    const reply = await call(url, "POST", "/v1/auth/token/create", {
      token: rootToken,
      body: { policies: token.policies.map((p) => `${prefix}-${p}`), ttl: "24h" },
    });
    expect(reply.status, describeReply(reply)).toBe(200);
    realTokens.push(reply.body.auth.client_token);
  }
  return {
    model: {
      keys: new Map(),
      tokens,
      policies: new Map<string, ModelCapability[]>([
        ["a", ["read"]],
        ["b", ["create", "update"]],
      ]),
    },
    real: { url, rootToken, prefix, tokens: realTokens },
  };
}
