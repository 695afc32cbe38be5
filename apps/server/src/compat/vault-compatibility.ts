import type { PathMethod } from "../engines/path-table.js";
import type { DeclaredRoute } from "../http/request-pipeline.js";
import type { EnginePathTable } from "./engine-path-tables.js";
import {
  type ParsedEndpoint,
  parseEndpoint,
  routeServes,
  takesRest,
  templateMatches,
  trimSlashes,
  vaultMethodOf,
} from "./endpoint-match.js";
import type { EgideExtension, VaultFamily } from "./vault-endpoint-types.js";
import { DISPATCHER_TEMPLATES, EGIDE_EXTENSIONS, VAULT_FAMILIES } from "./vault-endpoints.js";

/** The command that regenerates the document (and the test that keeps it in step). */
export const REGENERATE_COMMAND = "cd apps/server && EGIDE_UPDATE_DOCS=1 npx vitest run test/vault-compatibility-doc.test.ts";

/** What the document is generated from, beyond the server's routes (the catalogue, by default Vault's). */
export interface VaultCatalogue {
  families: readonly VaultFamily[];
  extensions: readonly EgideExtension[];
  dispatchers: readonly string[];
}

const DEFAULT_CATALOGUE: VaultCatalogue = { families: VAULT_FAMILIES, extensions: EGIDE_EXTENSIONS, dispatchers: DISPATCHER_TEMPLATES };

/** How much of a family Egide serves. */
export type FamilyStatus = "supported" | "partly supported" | "not supported";

const AREAS: readonly { prefix: string; heading: string }[] = [
  { prefix: "system/", heading: "System backend (`/sys`)" },
  { prefix: "auth/", heading: "Auth methods" },
  { prefix: "secret/", heading: "Secrets engines" },
];

const PATH_METHODS: readonly PathMethod[] = ["GET", "LIST", "POST", "PUT", "PATCH", "DELETE"];

/** One endpoint an engine's path table answers, as a Vault endpoint of its family. */
interface EngineEndpoint extends ParsedEndpoint {
  family: string;
}

/** The endpoints `entry`'s table answers, each method of each kind at its Vault template. */
function engineEndpoints(entry: EnginePathTable): EngineEndpoint[] {
  const endpoints: EngineEndpoint[] = [];
  for (const [kind, methods] of Object.entries(entry.table)) {
    const template = trimSlashes(`${entry.mountPlaceholder}/${entry.subPathOf(kind)}`);
    for (const method of PATH_METHODS) {
      if (methods[method] !== undefined) endpoints.push({ family: entry.family, method: vaultMethodOf(method), template });
    }
  }
  return endpoints;
}

function sameEndpoint(a: ParsedEndpoint, b: ParsedEndpoint): boolean {
  return a.method === b.method && templateMatches(a.template, b.template);
}

/** Orders strings by UTF-16 code units, whatever the locale, so that the output never varies. */
function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function show(endpoint: ParsedEndpoint): string {
  return `\`${endpoint.method} /${endpoint.template}\``;
}

/**
 * Checks that everything the server serves is classified: every declared route names one of
 * Vault's endpoints, an Egide extension or a dispatcher; every engine table's endpoint is one
 * of its family's; every extension is still served. Throws with the list of what is not.
 */
function assertClassified(routes: readonly DeclaredRoute[], engines: readonly EngineEndpoint[], catalogue: VaultCatalogue): void {
  const vaultTemplates = catalogue.families.flatMap((family) =>
    (family.endpoints ?? []).map((endpoint) => parseEndpoint(endpoint).template),
  );
  const problems: string[] = [];
  for (const route of routes) {
    const template = trimSlashes(route.spec.template);
    if (catalogue.dispatchers.includes(route.spec.template)) continue;
    if (catalogue.extensions.some((extension) => trimSlashes(extension.template) === template)) continue;
    if (vaultTemplates.some((vault) => templateMatches(template, vault, takesRest(route)))) continue;
    problems.push(
      `route ${route.method} ${route.url} (template "${route.spec.template}") is neither a Vault endpoint of the catalogue nor an Egide extension`,
    );
  }
  for (const endpoint of engines) {
    const family = catalogue.families.find((candidate) => candidate.doc === endpoint.family);
    if (family === undefined) {
      problems.push(`engine path table of unknown family "${endpoint.family}"`);
      continue;
    }
    if (!(family.endpoints ?? []).some((vault) => sameEndpoint(parseEndpoint(vault), endpoint))) {
      problems.push(`engine path table answers ${endpoint.method} ${endpoint.template}, which is no endpoint of ${endpoint.family}`);
    }
  }
  for (const extension of catalogue.extensions) {
    if (!routes.some((route) => trimSlashes(route.spec.template) === trimSlashes(extension.template))) {
      problems.push(`Egide extension "${extension.template}" is in the catalogue but no route declares it`);
    }
  }
  if (problems.length > 0) {
    throw new Error(`the Vault compatibility catalogue (apps/server/src/compat/) does not classify:\n- ${problems.join("\n- ")}`);
  }
}

/** The status of `family` and the endpoints it misses, from the routes and engine tables. */
function familyStatus(
  family: VaultFamily,
  routes: readonly DeclaredRoute[],
  engines: readonly EngineEndpoint[],
): { status: FamilyStatus; missing: ParsedEndpoint[] } {
  const endpoints = (family.endpoints ?? []).map(parseEndpoint);
  const missing = endpoints.filter(
    (endpoint) =>
      !routes.some((route) => routeServes(route, endpoint)) &&
      !engines.some((served) => served.family === family.doc && sameEndpoint(served, endpoint)),
  );
  const status: FamilyStatus =
    endpoints.length === 0 || missing.length === endpoints.length
      ? "not supported"
      : missing.length === 0
        ? "supported"
        : "partly supported";
  return { status, missing };
}

function familyRow(family: VaultFamily, status: FamilyStatus, missing: readonly ParsedEndpoint[]): string {
  const link = `[${family.title}](https://developer.hashicorp.com/vault/api-docs/${family.doc})`;
  const details: string[] = [];
  if (status === "partly supported") details.push(`Missing: ${missing.map(show).join(", ")}.`);
  if (family.note !== undefined) details.push(family.note);
  return details.length === 0 ? `| ${link} | ${status} | |` : `| ${link} | ${status} | ${details.join(" ")} |`;
}

/** The methods of the routes declaring `template`, as Vault names them (PUT is POST; HEAD follows GET). */
function declaredMethods(routes: readonly DeclaredRoute[], template: string): string[] {
  const methods = new Set<string>();
  for (const route of routes) {
    if (trimSlashes(route.spec.template) !== template || route.method === "HEAD") continue;
    methods.add(route.method === "PUT" ? "POST" : route.method);
    if (route.method === "GET" && route.spec.list === true) methods.add("LIST");
  }
  return [...methods].sort(byCodeUnits);
}

/**
 * The Markdown of `docs/vault-compatibility.md`: for each family of Vault's HTTP API, whether
 * Egide serves it, decided from the routes the server declares (`declaredRoutes(app)`) and
 * the engines' path tables, never by hand; then the routes Egide adds. Deterministic: the
 * same routes give the same bytes. Throws when a route, a table or the catalogue is not
 * classified (see `assertClassified`).
 */
export function renderVaultCompatibility(
  routes: readonly DeclaredRoute[],
  engineTables: readonly EnginePathTable[],
  catalogue: VaultCatalogue = DEFAULT_CATALOGUE,
): string {
  const engines = engineTables.flatMap(engineEndpoints);
  assertClassified(routes, engines, catalogue);

  const lines: string[] = [
    "# Vault API compatibility",
    "",
    "<!-- Generated from the server's route declarations: do not edit by hand. -->",
    "",
    "Egide answers HashiCorp Vault's HTTP API (under `/v1/`) so that Vault's clients work against it.",
    "This table lists every family of that API, one per page of Vault's",
    "[API documentation](https://developer.hashicorp.com/vault/api-docs), and says how much of it Egide serves:",
    "",
    "- **supported**: every endpoint of the page;",
    "- **partly supported**: some of them; the details name the endpoints that are missing;",
    "- **not supported**: none of them.",
    "",
    "It is generated, not written: the catalogue of Vault's endpoints (`apps/server/src/compat/`) is",
    "compared with the routes the server declares (`declaredRoutes(app)` of a running server: the same",
    "declarations the request pipeline enforces) and with the path tables of the engines mounted",
    "behind the catch-all route (`ENGINE_PATH_TABLES`). An endpoint is served when a route or a path",
    "table answers its method on its path template, whatever its parameters are named",
    "(`:role_name` is `:name`); `POST` is served by a route answering `POST` or `PUT`, `LIST` by a",
    "`GET` route that answers list requests. A route whose last parameter takes the rest of the path",
    "(`sys/mounts/:path`) serves the endpoints below it too (`sys/mounts/:path/tune`). A test compares",
    "this file with what the server declares and fails when they differ, or when a route is neither one",
    "of Vault's endpoints nor listed as an Egide extension. To regenerate it:",
    "",
    "```sh",
    REGENERATE_COMMAND,
    "```",
    "",
    "Served endpoints follow Vault's documented behaviour; the notes say where they differ. Across the",
    "API, Egide wraps responses as Vault does: a successful request with `X-Vault-Wrap-TTL` (and a body)",
    "is answered with `wrap_info` only, its response kept for one unwrap (`sys/wrapping/unwrap`) until",
    "the wrap TTL, capped at `max_lease_ttl`, runs out. Only JWT-format wrapping tokens",
    "(`X-Vault-Wrap-Format: jwt`) are not made.",
    "",
  ];

  const sections: string[] = [];
  const summary: string[] = [];
  for (const area of AREAS) {
    const families = catalogue.families
      .filter((family) => family.doc.startsWith(area.prefix))
      .sort((a, b) => byCodeUnits(a.title.toLowerCase(), b.title.toLowerCase()) || byCodeUnits(a.doc, b.doc));
    const counts: Record<FamilyStatus, number> = { supported: 0, "partly supported": 0, "not supported": 0 };
    const rows: string[] = [];
    for (const family of families) {
      const { status, missing } = familyStatus(family, routes, engines);
      counts[status]++;
      rows.push(familyRow(family, status, missing));
    }
    summary.push(
      `| ${area.heading} | ${counts.supported} | ${counts["partly supported"]} | ${counts["not supported"]} | ${families.length} |`,
    );
    sections.push(`## ${area.heading}`, "", "| Family | Status | Details |", "| --- | --- | --- |", ...rows, "");
  }

  lines.push("## Summary", "", "| Area | Supported | Partly supported | Not supported | Families |", "| --- | --: | --: | --: | --: |");
  lines.push(...summary, "", ...sections);

  lines.push(
    "## Egide extensions",
    "",
    "Endpoints Egide serves that Vault has not (declared like every route, and authorised by the same ACL).",
    "",
    "| Endpoint | Description |",
    "| --- | --- |",
  );
  const extensions = [...catalogue.extensions].sort((a, b) => byCodeUnits(trimSlashes(a.template), trimSlashes(b.template)));
  for (const extension of extensions) {
    const template = trimSlashes(extension.template);
    const methods = declaredMethods(routes, template).join(", ");
    lines.push(`| \`${methods} /${template}\` | ${extension.description} |`);
  }
  lines.push("");
  return lines.join("\n");
}
