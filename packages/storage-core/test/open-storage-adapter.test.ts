import { describe, expect, it } from "vitest";
import { BackendRegistry, ConfigError, openStorageAdapter, STORAGE_CONTRACT_VERSION, type BackendDefinition } from "../src/index.js";

/**
 * The protocol of opening a storage from configuration, on definitions registered directly:
 * what the adapter is asked, in which order, and what is closed again. The adapters' own
 * answers (SQLite's missing file) are tested in their packages against real databases.
 */
function recordingDefinition(type: string, behaviour: { audit: boolean; missing?: string }) {
  const calls: string[] = [];
  const definition: BackendDefinition<{ table: unknown; env: unknown }> = {
    type,
    packageName: `@example/${type}`,
    contractVersion: STORAGE_CONTRACT_VERSION,
    parseConfig: (table, env) => {
      calls.push("parseConfig");
      return { table, env };
    },
    findMissing: () => {
      calls.push("findMissing");
      return behaviour.missing;
    },
    create: async (config) => {
      calls.push(`create ${JSON.stringify(config.table)}`);
      const backend = {
        close: async () => void calls.push("close"),
        ...(behaviour.audit ? { audit: { append: async () => undefined } } : {}),
      };
      return backend as never;
    },
  };
  return { definition, calls, registry: new BackendRegistry().register(definition) };
}

describe("openStorageAdapter", () => {
  it("validates the options with the adapter's parseConfig, passing the environment, then opens it", async () => {
    const { registry, calls, definition } = recordingDefinition("mem", { audit: true });
    const parse = definition.parseConfig;
    let seenEnv: unknown;
    definition.parseConfig = (table, env) => {
      seenEnv = env;
      return parse(table, env);
    };
    const backend = await openStorageAdapter({ type: "mem", options: { size: 1 } }, { registry, env: { A: "1" } });
    expect(calls).toEqual(["parseConfig", 'create {"size":1}']);
    expect(seenEnv).toEqual({ A: "1" });
    expect(typeof backend.audit.append).toBe("function");
  });

  it("with mustExist, refuses a storage the adapter says is missing, before creating anything", async () => {
    const { registry, calls } = recordingDefinition("mem", { audit: true, missing: "there is no mem database at /nowhere" });
    const failure = await openStorageAdapter({ type: "mem", options: {} }, { registry, mustExist: true }).catch((e: unknown) => e);
    expect(ConfigError.isInstance(failure)).toBe(true);
    expect(failure).toMatchObject({ code: "STORAGE_NOT_FOUND", message: "there is no mem database at /nowhere" });
    expect(calls).toEqual(["parseConfig", "findMissing"]);
  });

  it("without mustExist, does not ask whether the storage exists (a server creates its database)", async () => {
    const { registry, calls } = recordingDefinition("mem", { audit: true, missing: "there is no mem database" });
    await openStorageAdapter({ type: "mem" }, { registry });
    expect(calls).toEqual(["parseConfig", "create {}"]);
  });

  it("refuses an adapter without an audit store, and closes what it opened", async () => {
    const { registry, calls } = recordingDefinition("bare", { audit: false });
    const failure = await openStorageAdapter({ type: "bare" }, { registry }).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "INVALID_CONFIG", option: "storage.type" });
    expect((failure as Error).message).toContain('storage type "bare" has no audit store');
    expect(calls).toEqual(["parseConfig", "create {}", "close"]);
  });

  it("resolves an unregistered type through the packages it is given, from where it is told", async () => {
    const failure = await openStorageAdapter(
      { type: "postgresql" },
      { packages: { postgresql: "@egide/storage-postgres-absent" }, resolveFrom: "/" },
    ).catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED" });
    expect((failure as Error).message).toContain("npm install @egide/storage-postgres-absent");
  });
});
