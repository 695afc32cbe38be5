import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { BackendRegistry, ConfigError, type BackendDefinition } from "../src/index.js";

const app = mkdtempSync(join(tmpdir(), "egide-registry-"));
afterAll(() => rmSync(app, { recursive: true, force: true }));

/** Installs a fake package into the temporary application's node_modules. */
function installPackage(name: string, source: string): void {
  const dir = join(app, "node_modules", ...name.split("/"));
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name, type: "module", exports: { ".": { default: "./index.js" } } }));
  writeFileSync(join(dir, "index.js"), source);
}

const fakeDefinition = (type: string) => `export const backendDefinition = {
  type: ${JSON.stringify(type)}, packageName: "x",
  parseConfig: (t) => t, create: async () => ({ type: ${JSON.stringify(type)} }),
};`;

describe("BackendRegistry", () => {
  it("loads the adapter package that a storage type names, from the application's node_modules", async () => {
    installPackage("@egide/storage-sqlite", fakeDefinition("sqlite"));
    const registry = new BackendRegistry({ resolveFrom: app });
    const definition = await registry.resolve("sqlite");
    expect(definition.type).toBe("sqlite");
    expect(await definition.create(definition.parseConfig({}))).toEqual({ type: "sqlite" });
  });

  it("names the package to install when the adapter is missing", async () => {
    const registry = new BackendRegistry({ resolveFrom: app });
    const failure = await registry.resolve("postgresql").catch((e: unknown) => e);
    expect(ConfigError.isInstance(failure)).toBe(true);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED", option: "storage.type" });
    expect((failure as Error).message).toContain("npm install @egide/storage-postgres pg");
  });

  it("names the missing dependency when the adapter is there but its driver is not", async () => {
    installPackage("@egide/storage-postgres", `import "pg-driver-that-is-absent";\n${fakeDefinition("postgresql")}`);
    const failure = await new BackendRegistry({ resolveFrom: app }).resolve("postgresql").catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "BACKEND_NOT_INSTALLED" });
    expect((failure as Error).message).toContain("whose dependency pg-driver-that-is-absent is not installed");
  });

  it("rejects an unknown type, listing the known ones", async () => {
    const failure = await new BackendRegistry({ resolveFrom: app }).resolve("s3").catch((e: unknown) => e);
    expect(failure).toMatchObject({ code: "UNKNOWN_BACKEND" });
    expect((failure as Error).message).toContain("known types: postgresql, sqlite");
  });

  it("rejects a package whose definition is for another type", async () => {
    installPackage("egide-storage-etcd", fakeDefinition("consul"));
    const registry = new BackendRegistry({ resolveFrom: app, packages: { etcd: "egide-storage-etcd" } });
    await expect(registry.resolve("etcd")).rejects.toThrow('defines storage type "consul", not "etcd"');
  });

  it("prefers registered definitions and accepts a custom importer", async () => {
    const definition: BackendDefinition = { type: "mem", packageName: "mem", parseConfig: (t) => t, create: async () => ({}) as never };
    const registry = new BackendRegistry({ importModule: async () => ({ backendDefinition: { ...definition, type: "other" } }), packages: { other: "o" } });
    registry.register(definition);
    expect(await registry.resolve("mem")).toBe(definition);
    expect((await registry.resolve("other")).type).toBe("other");
    expect(registry.types()).toContain("mem");
  });
});
