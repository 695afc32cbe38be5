import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, test } from "vitest";
import { ENGINE_PATH_TABLES, type EnginePathTable } from "../src/compat/engine-path-tables.js";
import { REGENERATE_COMMAND, type VaultCatalogue, renderVaultCompatibility } from "../src/compat/vault-compatibility.js";
import type { DeclaredRoute } from "../src/http/request-pipeline.js";
import { declaredRoutes } from "../src/http/request-pipeline.js";
import type { VaultRouteSpec } from "../src/http/vault-route.js";
import { parseServerConfig, startServer } from "../src/index.js";

// docs/vault-compatibility.md is generated from what a real server declares: this test fails
// when the file and the server disagree (run with EGIDE_UPDATE_DOCS=1 to rewrite it), and
// checks the rules by which routes and path tables count as serving Vault's endpoints.

const DOC = fileURLToPath(new URL("../../../docs/vault-compatibility.md", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "egide-compat-doc-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("docs/vault-compatibility.md", () => {
  test("is what the server's declared routes and engine path tables generate", async () => {
    const toml = `log_level = "silent"\n[storage]\ntype = "sqlite"\n[storage.sqlite]\npath = ${JSON.stringify(join(dir, "doc.db"))}\n[listener]\naddress = "127.0.0.1:0"\ntls_disable = true\n`;
    const server = await startServer({ config: parseServerConfig(toml) });
    let generated: string;
    try {
      generated = renderVaultCompatibility(declaredRoutes(server.app), ENGINE_PATH_TABLES);
    } finally {
      await server.close();
    }
    // What the server serves today, read from the generated text (so that a generator that
    // lost its inputs cannot pass by regenerating an empty file).
    expect(generated).toMatch(/^\| \[KV version 2\]\([^)]*\) \| supported \|/m);
    expect(generated).toMatch(/^\| \[\/sys\/health\]\([^)]*\) \| supported \|/m);
    expect(generated).toMatch(/^\| \[PKI\]\([^)]*\) \| not supported \|/m);
    expect(generated).toContain("| `GET /sys/storage/backup` |");

    if (process.env.EGIDE_UPDATE_DOCS === "1") {
      writeFileSync(DOC, generated);
      return;
    }
    let current = "";
    try {
      current = readFileSync(DOC, "utf8");
    } catch {
      // A missing file differs from the generated one, as below.
    }
    if (current !== generated) {
      expect.fail(`docs/vault-compatibility.md is out of date with the server's routes; regenerate it with:\n  ${REGENERATE_COMMAND}`);
    }
  }, 60_000);
});

describe("renderVaultCompatibility", () => {
  const route = (method: string, url: string, template: string, extra: Partial<VaultRouteSpec> = {}): DeclaredRoute => ({
    method,
    url,
    spec: { template, access: "acl", ...extra },
  });
  const catalogue: VaultCatalogue = {
    families: [
      { doc: "system/things", title: "/sys/things", endpoints: ["LIST sys/things", "GET sys/things/:name", "POST sys/things/:name"] },
      { doc: "system/others", title: "/sys/others", endpoints: ["POST sys/others", "GET sys/others/:path/tune"], note: "A note." },
      { doc: "secret/engine", title: "Engine", endpoints: ["GET :mount/item/:path", "POST :mount/item/:path", "LIST :mount/item/:path"] },
      { doc: "secret/unlisted", title: "Unlisted" },
    ],
    extensions: [{ template: "sys/extra", description: "Extra." }],
    dispatchers: ["<mount>/*"],
  };
  const engine: EnginePathTable = {
    family: "secret/engine",
    mountPlaceholder: ":mount",
    table: { item: { GET: async () => null, PUT: async () => null } },
    subPathOf: (kind) => `${kind}/:path`,
  };
  const base = [route("GET", "/v1/sys/extra", "sys/extra"), route("GET", "/v1/*", "<mount>/*", { list: true })];
  const rowOf = (text: string, title: string): string => text.split("\n").find((line) => line.startsWith(`| [${title}]`)) ?? "";

  test("a PUT route serves Vault's POST, parameter names do not count, and LIST needs a route that lists", () => {
    const routes = [
      ...base,
      route("GET", "/v1/sys/things", "sys/things"),
      route("GET", "/v1/sys/things/:id", "sys/things/:id"),
      route("PUT", "/v1/sys/things/:id", "sys/things/:id"),
    ];
    const text = renderVaultCompatibility(routes, [], catalogue);
    expect(rowOf(text, "/sys/things")).toContain("| partly supported | Missing: `LIST /sys/things`. |");
    const listing = renderVaultCompatibility(
      [...routes.slice(0, 2), route("GET", "/v1/sys/things", "sys/things", { list: true }), ...routes.slice(3)],
      [],
      catalogue,
    );
    expect(rowOf(listing, "/sys/things")).toContain("| supported |");
    expect(rowOf(listing, "/sys/unlisted")).toBe("");
    expect(rowOf(listing, "Unlisted")).toContain("| not supported |");
  });

  test("a route whose last parameter takes the rest of the path serves the endpoints below it", () => {
    const others = [route("POST", "/v1/sys/others", "sys/others"), route("GET", "/v1/sys/others/*", "sys/others/:path")];
    expect(rowOf(renderVaultCompatibility([...base, ...others], [], catalogue), "/sys/others")).toContain("| supported | A note. |");
    const exact = [route("POST", "/v1/sys/others", "sys/others"), route("GET", "/v1/sys/others/:path", "sys/others/:path")];
    expect(() => renderVaultCompatibility([...base, ...exact], [], catalogue)).toThrow(/GET \/v1\/sys\/others\/:path/);
  });

  test("an engine path table serves its family's endpoints, and only those", () => {
    const text = renderVaultCompatibility(base, [engine], catalogue);
    expect(rowOf(text, "Engine")).toContain("| partly supported | Missing: `LIST /:mount/item/:path`. |");
    expect(renderVaultCompatibility(base, [], catalogue)).toMatch(/^\| \[Engine\]\([^)]*\) \| not supported \|/m);
    const stray: EnginePathTable = { ...engine, table: { item: { DELETE: async () => null } } };
    expect(() => renderVaultCompatibility(base, [stray], catalogue)).toThrow(
      /DELETE :mount\/item\/:path, which is no endpoint of secret\/engine/,
    );
    expect(() => renderVaultCompatibility(base, [{ ...engine, family: "secret/nowhere" }], catalogue)).toThrow(/unknown family/);
  });

  test("a route that is neither Vault's nor an extension fails, and so does an extension no route declares", () => {
    expect(() => renderVaultCompatibility([...base, route("POST", "/v1/sys/new-thing", "sys/new-thing")], [], catalogue)).toThrow(
      /route POST \/v1\/sys\/new-thing \(template "sys\/new-thing"\) is neither/,
    );
    expect(() => renderVaultCompatibility([...base, route("GET", "/v1/*", "<other>/*")], [], catalogue)).toThrow(/<other>/);
    expect(() => renderVaultCompatibility(base.slice(1), [], catalogue)).toThrow(
      /"sys\/extra" is in the catalogue but no route declares it/,
    );
    const text = renderVaultCompatibility(base, [], catalogue);
    expect(text).toContain("| `GET /sys/extra` | Extra. |");
    expect(renderVaultCompatibility(base, [], catalogue)).toBe(text);
  });
});
