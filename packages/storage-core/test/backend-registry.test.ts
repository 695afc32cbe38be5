import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BackendRegistry, ConfigError, openStorageAdapter, STORAGE_CONTRACT_VERSION, type BackendDefinition } from "../src/index.js";

const app = mkdtempSync(join(tmpdir(), "egide-registry-"));
afterAll(() => rmSync(app, { recursive: true, force: true }));

/** Installs a fake package into the temporary application's node_modules. */
function installPackage(name: string, source: string): void {
  const dir = join(app, "node_modules", ...name.split("/"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, type: "module", exports: { ".": { default: "./index.js" } } }));
  writeFileSync(join(dir, "index.js"), source);
}

const fakeDefinition = (type: string, contractVersion: unknown = STORAGE_CONTRACT_VERSION) => `export const backendDefinition = {
  type: ${JSON.stringify(type)}, packageName: "x",${contractVersion === null ? "" : ` contractVersion: ${JSON.stringify(contractVersion)},`}
  parseConfig: (t) => t, create: async () => ({ type: ${JSON.stringify(type)} }),
};`;

/** A definition-shaped JSON without functions: the registry must refuse it as no definition. */
const fakeJson = (type: string) => JSON.stringify({ type, packageName: "x", contractVersion: STORAGE_CONTRACT_VERSION });

describe("BackendRegistry", () => {
  it("loads the adapter package that a storage type names, from the application's node_modules", async () => {
    installPackage("@egide/storage-sqlite", fakeDefinition("sqlite"));
    const registry = new BackendRegistry({ resolveFrom: app });
    const definition = await registry.resolve("sqlite");
    expect(definition.type).toBe("sqlite");
    expect(await definition.create(definition.parseConfig({}))).toEqual({ type: "sqlite" });
  });

  it("names the package to install when the adapter is missing, and the types it knows", async () => {
    const registry = new BackendRegistry({
      resolveFrom: app,
      packages: { postgresql: "@egide/storage-postgres", sqlite: "@egide/storage-sqlite" },
    });
    const failure = await registry.resolve("postgresql").catch((e: unknown) => e);
    expect(ConfigError.isInstance(failure)).toBe(true);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED", option: "storage.type" });
    expect((failure as Error).message).toBe(
      'storage.type: storage type "postgresql" needs the package @egide/storage-postgres, which is not installed; install it with: npm install @egide/storage-postgres (storage types known here: sqlite)',
    );
  });

  it("names the missing dependency when the adapter is there but its driver is not, down to the package of a deep import", async () => {
    installPackage("@egide/storage-postgres", `import "pg-driver-that-is-absent";\n${fakeDefinition("postgresql")}`);
    installPackage("@egide/storage-deep", `import "@absent-scope/driver/lib/client.js";\n${fakeDefinition("deep")}`);
    const registry = new BackendRegistry({ resolveFrom: app, packages: { postgresql: "@egide/storage-postgres" } });
    const failure = await registry.resolve("postgresql").catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED" });
    expect((failure as Error).message).toContain(
      "whose dependency pg-driver-that-is-absent is not installed; install it with: npm install pg-driver-that-is-absent",
    );
    const deep = await registry.resolve("deep").catch((e: unknown) => e);
    expect((deep as Error).message).toContain(
      "whose dependency @absent-scope/driver is not installed; install it with: npm install @absent-scope/driver",
    );
  });

  it("resolves an unmapped type by the convention @egide/storage-<type>, and names that package when it is missing", async () => {
    installPackage("@egide/storage-etcd", fakeDefinition("etcd"));
    const registry = new BackendRegistry({ resolveFrom: app });
    expect((await registry.resolve("etcd")).type).toBe("etcd");
    const failure = await registry.resolve("s3").catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED", option: "storage.type" });
    expect((failure as Error).message).toBe(
      'storage.type: storage type "s3" needs an adapter package, and neither @egide/storage-s3 nor egide-storage-s3 is installed; install it with: npm install @egide/storage-s3, or name its package with [storage] package = "…" (storage types known here: etcd)',
    );
  });

  it("falls back to egide-storage-<type>, the name a third party publishes under", async () => {
    installPackage("egide-storage-memkv", fakeDefinition("memkv"));
    const registry = new BackendRegistry({ resolveFrom: app });
    expect((await registry.resolve("memkv")).type).toBe("memkv");
  });

  it("searches each resolveFrom directory in order", async () => {
    const other = mkdtempSync(join(tmpdir(), "egide-registry-other-"));
    try {
      const dir = join(other, "node_modules", "egide-storage-elsewhere");
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "egide-storage-elsewhere", type: "module", exports: "./index.js" }));
      writeFileSync(join(dir, "index.js"), fakeDefinition("elsewhere"));
      const registry = new BackendRegistry({ resolveFrom: [app, other] });
      expect((await registry.resolve("elsewhere")).type).toBe("elsewhere");
      await expect(new BackendRegistry({ resolveFrom: app }).resolve("elsewhere")).rejects.toMatchObject({ code: "BACKEND_NOT_INSTALLED" });
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it("loads the package the configuration names ([storage] package), whatever its name, and names it when missing", async () => {
    installPackage("@acme/vault-storage-for-egide", fakeDefinition("acme"));
    const registry = new BackendRegistry({ resolveFrom: app });
    expect((await registry.resolve("acme", "@acme/vault-storage-for-egide")).type).toBe("acme");
    // Without the name, the convention does not find it.
    await expect(registry.resolve("acme")).rejects.toMatchObject({ code: "BACKEND_NOT_INSTALLED" });
    const failure = await registry.resolve("acme", "@acme/not-there").catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED", option: "storage.package" });
    expect((failure as Error).message).toBe(
      'storage.package: storage type "acme" needs the package @acme/not-there (named by storage.package), which is not installed; install it with: npm install @acme/not-there',
    );
    // The named package must define the configured type.
    await expect(registry.resolve("other", "@acme/vault-storage-for-egide")).rejects.toThrow('defines storage type "acme", not "other"');
  });

  it("refuses, before importing anything, a [storage] package that is not a package name (paths, URLs, spaces)", async () => {
    const imported: string[] = [];
    const registry = new BackendRegistry({ importModule: async (specifier) => void imported.push(specifier) });
    for (const name of [
      "",
      "./adapter",
      "/abs/adapter.js",
      "file:///x.js",
      "../x",
      "@scope",
      "@scope/",
      "@/x",
      "A",
      "a b",
      "a/b/c",
      "_x",
      ".x",
      "x\u0000",
      "a".repeat(215),
    ]) {
      const failure = await registry.resolve("mem", name).catch((e: unknown) => e);
      expect(failure, JSON.stringify(name)).toMatchObject({ code: "UNKNOWN_BACKEND", option: "storage.package" });
    }
    expect(imported).toEqual([]);
    expect(() => new BackendRegistry({ packages: { mem: "./mem.js" } })).toThrow(ConfigError);
  });

  it("refuses a package that exports no definition with one line saying what it expected", async () => {
    installPackage("egide-storage-empty", "export const somethingElse = 1;");
    const failure = await new BackendRegistry({ resolveFrom: app }).resolve("empty").catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "INVALID_CONFIG" });
    expect((failure as Error).message).toBe(
      "storage.type: egide-storage-empty does not export a backendDefinition (an object with type, contractVersion, parseConfig and create); is it an Egide storage adapter?",
    );
  });

  it("refuses an adapter built for another contract version, or for none, naming the versions that match", async () => {
    installPackage("egide-storage-future", fakeDefinition("future", STORAGE_CONTRACT_VERSION + 1));
    installPackage("egide-storage-old", fakeDefinition("old", null));
    installPackage("egide-storage-text", fakeDefinition("text", String(STORAGE_CONTRACT_VERSION)));
    const registry = new BackendRegistry({ resolveFrom: app });
    const future = await registry.resolve("future").catch((e: unknown) => e);
    expect(future).toMatchObject({ code: "INCOMPATIBLE_BACKEND", option: "storage.type" });
    expect((future as Error).message).toBe(
      `storage.type: egide-storage-future is built for storage contract version ${STORAGE_CONTRACT_VERSION + 1}, but this Egide supports contract version ${STORAGE_CONTRACT_VERSION}; install a release of egide-storage-future whose backendDefinition.contractVersion is ${STORAGE_CONTRACT_VERSION}`,
    );
    await expect(registry.resolve("old")).rejects.toThrow("egide-storage-old declares no contractVersion");
    await expect(registry.resolve("text")).rejects.toMatchObject({ code: "INCOMPATIBLE_BACKEND" });
    const direct = {
      type: "direct",
      packageName: "direct",
      contractVersion: 0,
      parseConfig: (t: unknown) => t,
      create: async () => ({}) as never,
    };
    expect(() => registry.register(direct)).toThrow(/INCOMPATIBLE|contract version/);
    expect(registry.types()).not.toContain("direct");
  });

  it("refuses, before importing anything, a type that cannot be a package name segment", async () => {
    const imported: string[] = [];
    const registry = new BackendRegistry({ importModule: async (specifier) => void imported.push(specifier) });
    for (const type of [
      "",
      "S3",
      "sqlite ",
      " sqlite",
      "../sqlite",
      "a/b",
      "@egide/x",
      "-a",
      "1a",
      "a_b",
      "s\u0000",
      "sq\u200blite",
      "a".repeat(65),
    ]) {
      const failure = await registry.resolve(type).catch((e: unknown) => e);
      expect(failure, JSON.stringify(type)).toMatchObject({ code: "UNKNOWN_BACKEND", option: "storage.type" });
    }
    expect(imported).toEqual([]);
    expect(() => new BackendRegistry({ packages: { "Bad Type": "x" } })).toThrow(ConfigError);
    // The longest name accepted is tried (and this package exports no definition).
    const longest = new BackendRegistry({ importModule: async () => ({ backendDefinition: JSON.parse(fakeJson("a".repeat(64))) }) });
    await expect(longest.resolve("a".repeat(64))).rejects.toMatchObject({ code: "INVALID_CONFIG" });
  });

  it("rejects a package whose definition is for another type", async () => {
    installPackage("egide-storage-etcd", fakeDefinition("consul"));
    const registry = new BackendRegistry({ resolveFrom: app, packages: { etcd: "egide-storage-etcd" } });
    await expect(registry.resolve("etcd")).rejects.toThrow('defines storage type "consul", not "etcd"');
  });

  it("prefers registered definitions and accepts a custom importer", async () => {
    const definition: BackendDefinition = {
      type: "mem",
      packageName: "mem",
      contractVersion: STORAGE_CONTRACT_VERSION,
      parseConfig: (t) => t,
      create: async () => ({}) as never,
    };
    const registry = new BackendRegistry({
      importModule: async () => ({ backendDefinition: { ...definition, type: "other" } }),
      packages: { other: "o" },
    });
    registry.register(definition);
    expect(await registry.resolve("mem")).toBe(definition);
    expect((await registry.resolve("other")).type).toBe("other");
    expect(registry.types()).toContain("mem");
  });
});

/** Installs a package with a manifest and files of the test's choosing under `root`'s node_modules. */
function installRaw(root: string, name: string, manifest: Record<string, unknown>, files: Record<string, string>): void {
  const dir = join(root, "node_modules", ...name.split("/"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, type: "module", ...manifest }));
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(join(dir, file, ".."), { recursive: true });
    writeFileSync(join(dir, file), text);
  }
}

describe("BackendRegistry: what a configuration can make it load (review findings)", () => {
  it("refuses the name of any Node builtin as [storage] package: it would resolve to the builtin, or to a file of the working directory", async () => {
    const imported: string[] = [];
    const registry = new BackendRegistry({ importModule: async (specifier) => void imported.push(specifier) });
    for (const name of ["events", "fs", "buffer", "string_decoder", "process", "path", "node:fs", "node:test", "crypto"]) {
      await expect(registry.resolve("mem", name), name).rejects.toMatchObject({ code: "UNKNOWN_BACKEND", option: "storage.package" });
    }
    expect(imported).toEqual([]);
    // Even installed under that name and present in the working directory, nothing is loaded.
    const planted = mkdtempSync(join(tmpdir(), "egide-registry-builtin-"));
    try {
      installRaw(planted, "events", { exports: "./index.js" }, { "index.js": fakeDefinition("mem") });
      writeFileSync(join(planted, "events"), "globalThis.__egidePlanted = true;");
      await expect(new BackendRegistry({ resolveFrom: planted }).resolve("mem", "events")).rejects.toMatchObject({
        code: "UNKNOWN_BACKEND",
      });
      expect((globalThis as { __egidePlanted?: boolean }).__egidePlanted).toBeUndefined();
    } finally {
      rmSync(planted, { recursive: true, force: true });
    }
  });

  it("reports an installed but broken adapter instead of falling back to another package's spelling", async () => {
    const root = mkdtempSync(join(tmpdir(), "egide-registry-broken-"));
    try {
      // @egide/storage-brk is linked but not built (its entry file is missing); a package of the
      // third-party spelling is there too and must not be loaded in its place.
      installRaw(root, "@egide/storage-brk", { exports: { ".": { default: "./dist/index.js" } } }, {});
      installRaw(
        root,
        "egide-storage-brk",
        { exports: "./index.js" },
        { "index.js": `${fakeDefinition("brk")}\nglobalThis.__egideShadow = true;` },
      );
      const failure = await new BackendRegistry({ resolveFrom: root }).resolve("brk").catch((e: unknown) => e);
      expect(failure).toMatchObject({ code: "INVALID_CONFIG", option: "storage.type" });
      expect((failure as Error).message).toMatch(
        /^storage\.type: @egide\/storage-brk is installed but cannot be loaded \(.*\); reinstall or rebuild it$/,
      );
      expect((globalThis as { __egideShadow?: boolean }).__egideShadow).toBeUndefined();
      // An adapter that throws while loading: the same one line, the error as the cause.
      installRaw(root, "egide-storage-throws", { exports: "./index.js" }, { "index.js": 'throw new Error("boom at load\\nsecond line");' });
      const thrown = await new BackendRegistry({ resolveFrom: root }).resolve("throws").catch((e: unknown) => e);
      expect((thrown as Error).message).toBe(
        "storage.type: egide-storage-throws is installed but cannot be loaded (boom at load); reinstall or rebuild it",
      );
      expect(((thrown as Error).cause as Error).message).toContain("second line");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("loads an adapter through its exports map with the conditions of an ESM import, and never a file outside the package", async () => {
    const root = mkdtempSync(join(tmpdir(), "egide-registry-exports-"));
    try {
      installRaw(
        root,
        "egide-storage-esm",
        { exports: { ".": { types: "./index.d.ts", import: "./esm.js" } } },
        { "esm.js": fakeDefinition("esm") },
      );
      installRaw(
        root,
        "egide-storage-nested",
        { exports: { ".": { node: { import: "./n/index.js" }, default: "./nope.js" } } },
        {
          "n/index.js": fakeDefinition("nested"),
        },
      );
      installRaw(root, "egide-storage-sugar", { exports: { import: "./s.js", require: "./s.cjs" } }, { "s.js": fakeDefinition("sugar") });
      installRaw(root, "egide-storage-main", { main: "lib/main.js" }, { "lib/main.js": fakeDefinition("main") });
      installRaw(root, "egide-storage-bare", {}, { "index.js": fakeDefinition("bare") });
      installRaw(root, "egide-storage-requireonly", { exports: { ".": { require: "./r.cjs" } } }, { "r.cjs": "" });
      installRaw(root, "egide-storage-escape", { main: "../egide-storage-esm/esm.js" }, {});
      const registry = new BackendRegistry({ resolveFrom: root });
      for (const type of ["esm", "nested", "sugar", "main", "bare"]) expect((await registry.resolve(type)).type, type).toBe(type);
      await expect(registry.resolve("requireonly")).rejects.toMatchObject({ code: "INVALID_CONFIG" });
      await expect(registry.resolve("escape")).rejects.toThrow(/points outside the package/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("does not search pnpm's hoisted store (node_modules/.pnpm/node_modules) on the way up", async () => {
    const root = mkdtempSync(join(tmpdir(), "egide-registry-pnpm-"));
    try {
      installRaw(
        join(root, "node_modules", ".pnpm"),
        "egide-storage-hoisted",
        { exports: "./index.js" },
        { "index.js": fakeDefinition("hoisted") },
      );
      const serverDir = join(root, "node_modules", ".pnpm", "@egide+server@1", "node_modules", "@egide", "server", "dist");
      mkdirSync(serverDir, { recursive: true });
      await expect(new BackendRegistry({ resolveFrom: serverDir }).resolve("hoisted")).rejects.toMatchObject({
        code: "BACKEND_NOT_INSTALLED",
      });
      // Installed in the application's own node_modules, it is found from the same place.
      installRaw(root, "egide-storage-hoisted", { exports: "./index.js" }, { "index.js": fakeDefinition("hoisted") });
      expect((await new BackendRegistry({ resolveFrom: serverDir }).resolve("hoisted")).type).toBe("hoisted");
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it("turns whatever a definition declares (BigInt, Symbol, NaN, cycles, throwing getters) into a one-line ConfigError", async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const versions: [unknown, string][] = [
      [1n, "a value of type bigint"],
      [Symbol("v"), "a value of type symbol"],
      [Number.NaN, "NaN"],
      [cyclic, "a value of type object"],
      [
        {
          toJSON: () => {
            throw new Error("no");
          },
        },
        "a value of type object",
      ],
      ["1", '"1"'],
    ];
    for (const [contractVersion, shown] of versions) {
      const registry = new BackendRegistry({
        importModule: async () => ({
          backendDefinition: { type: "odd", packageName: "odd", contractVersion, parseConfig: () => 0, create: async () => ({}) },
        }),
      });
      const failure = await registry.resolve("odd").catch((e: unknown) => e);
      expect(ConfigError.isInstance(failure), shown).toBe(true);
      expect(failure).toMatchObject({ code: "INCOMPATIBLE_BACKEND" });
      expect((failure as Error).message).toContain(`is built for storage contract version ${shown},`);
    }
    const throwing = new BackendRegistry({
      importModule: async () => ({
        backendDefinition: new Proxy(
          {},
          {
            get: () => {
              throw new Error("trap");
            },
          },
        ),
      }),
    });
    await expect(throwing.resolve("trap")).rejects.toMatchObject({ code: "INVALID_CONFIG" });
    const wrongType = new BackendRegistry({
      importModule: async () => ({
        backendDefinition: { type: 1n, contractVersion: STORAGE_CONTRACT_VERSION, parseConfig: () => 0, create: async () => ({}) },
      }),
    });
    await expect(wrongType.resolve("typed")).rejects.toThrow('defines storage type a value of type bigint, not "typed"');
    // Values that are not strings where names belong: a ConfigError, not a TypeError.
    await expect(new BackendRegistry().resolve(null as unknown as string)).rejects.toMatchObject({ code: "UNKNOWN_BACKEND" });
    await expect(new BackendRegistry().resolve("mem", null as unknown as string)).rejects.toMatchObject({ code: "UNKNOWN_BACKEND" });
    await expect(
      openStorageAdapter({ type: "mem", package: 5 as unknown as string }, { registry: new BackendRegistry() }),
    ).rejects.toMatchObject({
      code: "UNKNOWN_BACKEND",
      option: "storage.package",
    });
  });
});
