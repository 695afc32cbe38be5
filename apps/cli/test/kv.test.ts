import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { assertBuildIsFresh, egide } from "./support/egide-cli.js";
import { api, startCliTestServer } from "@egide/test-server";
import type { CliTestServer } from "@egide/test-server";

// `egide kv …` against a real server: every subcommand's output and its effect on the
// server's state, read back through the API.

let server: CliTestServer;
let env: Record<string, string>;
beforeAll(async () => {
  assertBuildIsFresh();
  server = await startCliTestServer();
  env = server.env;
});
afterAll(() => server?.close());

/** Writes a version through the API (setup that is not under test). */
async function write(path: string, data: Record<string, string>): Promise<void> {
  expect((await api(server, "POST", `secret/data/${path}`, { data })).status).toBe(200);
}

/** The latest data of a key, read through the API. */
async function stored(path: string): Promise<Record<string, unknown> | null> {
  const response = await api(server, "GET", `secret/data/${path}`);
  return response.status === 200 ? response.body.data.data : null;
}

describe.concurrent("kv put and get", () => {
  test("put writes key=value pairs and prints the new version's metadata; get shows data and metadata", async () => {
    const put = await egide(["kv", "put", "secret/app", "user=app", "password=s3cr=t"], { env });
    expect(put.stderr).toBe("");
    expect(put.code).toBe(0);
    expect(put.stdout).toContain("== Secret Path ==\nsecret/data/app\n");
    expect(put.stdout).toMatch(/version\s+1\n/);
    expect(put.stdout).not.toContain("s3cr=t");
    expect(await stored("app")).toEqual({ user: "app", password: "s3cr=t" });

    const get = await egide(["kv", "get", "secret/app"], { env });
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/=+ Data =+\nKey\s+Value\n---\s+-----\npassword\s+s3cr=t\nuser\s+app\n$/);
    expect(get.stdout).toMatch(/created_time\s+\d{4}-\d\d-\d\dT/);
    expect(get.stdout).toMatch(/version\s+1\n/);
  });

  test("--format json prints the server's responses", async () => {
    const put = await egide(["kv", "put", "--format", "json", "secret/json", "a=1"], { env });
    expect(put.code).toBe(0);
    expect(JSON.parse(put.stdout).data).toMatchObject({ version: 1, destroyed: false });
    const get = await egide(["kv", "get", "secret/json", "--format=json"], { env });
    expect(get.code).toBe(0);
    const body = JSON.parse(get.stdout);
    expect(body.data.data).toEqual({ a: "1" });
    expect(body.data.metadata.version).toBe(1);
    expect(typeof body.request_id).toBe("string");
  });

  test("values from @file and from stdin (key=-), and a JSON object from stdin (-) or a file (@file)", async () => {
    const file = join(server.dir, "cert.pem");
    writeFileSync(file, "-----BEGIN-----\nline two\n");
    const fromFile = await egide(["kv", "put", "secret/files", `cert=@${file}`, "pass=-"], { env, input: "from stdin\n" });
    expect(fromFile.code).toBe(0);
    expect(await stored("files")).toEqual({ cert: "-----BEGIN-----\nline two\n", pass: "from stdin" });

    const json = await egide(["kv", "put", "secret/jsonin", "-"], { env, input: '{"n": 3, "nested": {"x": true}}' });
    expect(json.code).toBe(0);
    expect(await stored("jsonin")).toEqual({ n: 3, nested: { x: true } });
    const jsonFile = join(server.dir, "data.json");
    writeFileSync(jsonFile, '{"k": "v"}');
    expect((await egide(["kv", "put", "secret/jsonfile", `@${jsonFile}`], { env })).code).toBe(0);
    expect(await stored("jsonfile")).toEqual({ k: "v" });
  });

  test("--field prints only that value, with no newline when piped; a missing field is an error", async () => {
    await write("field", { token: "abc", n: "1" });
    const field = await egide(["kv", "get", "--field", "token", "secret/field"], { env });
    expect(field).toEqual({ code: 0, stdout: "abc", stderr: "" });
    const vaultStyle = await egide(["kv", "get", "-field=token", "secret/field"], { env });
    expect(vaultStyle.stdout).toBe("abc");
    const missing = await egide(["kv", "get", "--field", "nope", "secret/field"], { env });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toBe('egide: the secret at secret/data/field has no key "nope"\n');
  });

  test("--cas (also Vault's -cas=N and -cas N) writes only over the expected version", async () => {
    const create = await egide(["kv", "put", "--cas", "0", "secret/cas", "v=1"], { env });
    expect(create.code).toBe(0);
    const again = await egide(["kv", "put", "-cas=0", "secret/cas", "v=2"], { env });
    expect(again.code).toBe(1);
    expect(again.stderr).toBe("egide: bad request (400): check-and-set parameter did not match the current version\n");
    expect(await stored("cas")).toEqual({ v: "1" });
    const next = await egide(["kv", "put", "-cas", "1", "secret/cas", "v=2"], { env });
    expect(next.code).toBe(0);
    expect(await stored("cas")).toEqual({ v: "2" });
    const bad = await egide(["kv", "put", "--cas", "x", "secret/cas", "v=3"], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("option '--cas <version>' argument 'x' is invalid");
  });

  test("get --version N (and -version=N) reads an older version", async () => {
    await write("versions", { v: "one" });
    await write("versions", { v: "two" });
    const old = await egide(["kv", "get", "--version", "1", "--field", "v", "secret/versions"], { env });
    expect(old.stdout).toBe("one");
    const vaultStyle = await egide(["kv", "get", "-version=1", "-field=v", "secret/versions"], { env });
    expect(vaultStyle.stdout).toBe("one");
    const latest = await egide(["kv", "get", "--field", "v", "secret/versions"], { env });
    expect(latest.stdout).toBe("two");
    const none = await egide(["kv", "get", "--version", "9", "secret/versions"], { env });
    expect(none.code).toBe(2);
    expect(none.stderr).toBe("egide: no value found at secret/data/versions\n");
  });

  test("a path with no value exits 2 with Vault's message", async () => {
    const run = await egide(["kv", "get", "secret/does/not/exist"], { env });
    expect(run).toEqual({ code: 2, stdout: "", stderr: "egide: no value found at secret/data/does/not/exist\n" });
  });

  test("--mount names the mount and PATH is the key below it; a path under no mount is refused", async () => {
    const put = await egide(["kv", "put", "--mount", "secret", "mounted/key", "m=1"], { env });
    expect(put.code).toBe(0);
    expect(await stored("mounted/key")).toEqual({ m: "1" });
    const nowhere = await egide(["kv", "get", "nomount/app"], { env });
    expect(nowhere.code).toBe(1);
    expect(nowhere.stderr).toMatch(/^egide: permission denied \(403\): preflight capability check returned 403/);
  });
});

describe.concurrent("kv patch", () => {
  test("patch changes some keys and keeps the others; --cas applies; a missing secret exits 2", async () => {
    await write("patchme", { a: "1", b: "2" });
    const patch = await egide(["kv", "patch", "secret/patchme", "b=3", "c=4"], { env });
    expect(patch.code).toBe(0);
    expect(patch.stdout).toMatch(/version\s+2\n/);
    expect(await stored("patchme")).toEqual({ a: "1", b: "3", c: "4" });
    const stale = await egide(["kv", "patch", "--cas", "1", "secret/patchme", "a=9"], { env });
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain("check-and-set parameter did not match");
    expect(await stored("patchme")).toEqual({ a: "1", b: "3", c: "4" });
    const missing = await egide(["kv", "patch", "secret/nothing-here", "a=1"], { env });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe("egide: no value found at secret/data/nothing-here\n");
  });
});

describe.concurrent("kv list", () => {
  test("lists keys and folders; json prints the server's answer; an empty folder exits 2", async () => {
    await write("team/db", { x: "1" });
    await write("team/sub/api", { x: "1" });
    const list = await egide(["kv", "list", "secret/team"], { env });
    expect(list).toEqual({ code: 0, stdout: "Keys\n----\ndb\nsub/\n", stderr: "" });
    const root = await egide(["kv", "list", "secret/"], { env });
    expect(root.stdout).toContain("\nteam/\n");
    const json = await egide(["kv", "list", "--format", "json", "secret/team/"], { env });
    expect(JSON.parse(json.stdout).data.keys).toEqual(["db", "sub/"]);
    const empty = await egide(["kv", "list", "secret/none"], { env });
    expect(empty).toEqual({ code: 2, stdout: "", stderr: "egide: no value found at secret/metadata/none\n" });
  });
});

describe.concurrent("kv delete, undelete, destroy and metadata", () => {
  test("delete the latest version, undelete it, delete given versions, destroy them for good", async () => {
    await write("life", { v: "1" });
    await write("life", { v: "2" });
    const del = await egide(["kv", "delete", "secret/life"], { env });
    expect(del).toEqual({ code: 0, stdout: "Success! Data deleted (if it existed) at: secret/data/life\n", stderr: "" });
    expect(await stored("life")).toBeNull();
    const deleted = await egide(["kv", "get", "secret/life"], { env });
    expect(deleted.code).toBe(2);
    expect(deleted.stdout).toMatch(/deletion_time\s+\d{4}-/);
    expect(deleted.stderr).toBe("egide: version 2 of secret/data/life is deleted: it has no data\n");

    const undelete = await egide(["kv", "undelete", "--versions", "2", "secret/life"], { env });
    expect(undelete.code).toBe(0);
    expect(await stored("life")).toEqual({ v: "2" });

    const delVersions = await egide(["kv", "delete", "-versions=1,2", "secret/life", "--format", "json"], { env });
    expect(JSON.parse(delVersions.stdout)).toEqual({ success: true, path: "secret/data/life", versions: [1, 2] });
    expect(await stored("life")).toBeNull();

    const destroy = await egide(["kv", "destroy", "--versions", "1", "--versions", "2", "secret/life"], { env });
    expect(destroy.code).toBe(0);
    const metadata = await api(server, "GET", "secret/metadata/life");
    expect(metadata.body.data.versions["1"].destroyed).toBe(true);
    expect(metadata.body.data.versions["2"].destroyed).toBe(true);
    // Destroyed versions cannot be brought back.
    await egide(["kv", "undelete", "--versions", "2", "secret/life"], { env });
    expect(await stored("life")).toBeNull();
  });

  test("undelete and destroy require --versions; bad version lists are usage errors", async () => {
    const undelete = await egide(["kv", "undelete", "secret/life"], { env });
    expect(undelete.code).toBe(2);
    expect(undelete.stderr).toContain("required option '--versions <list>' not specified");
    const bad = await egide(["kv", "destroy", "--versions", "1,x", "secret/life"], { env });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("expected version numbers separated by commas");
  });

  test("metadata get shows settings and every version; metadata delete removes the key entirely", async () => {
    await write("meta", { v: "1" });
    await write("meta", { v: "2" });
    const get = await egide(["kv", "metadata", "get", "secret/meta"], { env });
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/current_version\s+2\n/);
    expect(get.stdout).toMatch(/Version\s+Created\s+Deleted\s+Destroyed\n-+\s+-+\s+-+\s+-+\n1\s+\S+\s+n\/a\s+false\n2\s+/);
    const json = await egide(["kv", "metadata", "get", "--format", "json", "secret/meta"], { env });
    expect(JSON.parse(json.stdout).data.current_version).toBe(2);
    const del = await egide(["kv", "metadata", "delete", "secret/meta"], { env });
    expect(del.stdout).toBe("Success! Data deleted (if it existed) at: secret/metadata/meta\n");
    expect((await api(server, "GET", "secret/metadata/meta")).status).toBe(404);
    const gone = await egide(["kv", "metadata", "get", "secret/meta"], { env });
    expect(gone.code).toBe(2);
    expect(gone.stderr).toBe("egide: no value found at secret/metadata/meta\n");
  });
});

describe.concurrent("kv errors", () => {
  test("bad arguments exit 2 and change nothing; the value of a bare argument is not echoed", async () => {
    const cases: Array<[string[], string, string?]> = [
      [["kv", "put", "secret/bad"], "no data given"],
      [["kv", "put", "secret/bad", "hunter2-secret"], "expected KEY=VALUE", "hunter2-secret"],
      [["kv", "put", "secret/bad", "=v"], "has no key before '='"],
      [["kv", "put", "secret/bad", "a=1", "a=2"], 'the key "a" is given twice'],
      [["kv", "put", "secret/bad", `a=@${join(server.dir, "missing")}`], "no such file"],
      [["kv", "put", "secret", "a=1"], "a key below the mount is required"],
      [["kv", "get"], "missing required argument 'path'"],
      [["kv", "get", "--version", "-1", "secret/app"], "is invalid"],
      [["kv", "nope"], "unknown command 'nope'"],
    ];
    const runs = await Promise.all(cases.map(([args]) => egide(args, { env })));
    for (const [index, [args, message, hidden]] of cases.entries()) {
      const run = runs[index] as Awaited<ReturnType<typeof egide>>;
      expect(run.code, args.join(" ")).toBe(2);
      expect(run.stderr, args.join(" ")).toContain(message);
      expect(run.stderr.trimEnd().split("\n"), args.join(" ")).toHaveLength(1);
      if (hidden !== undefined) expect(run.stderr).not.toContain(hidden);
    }
    expect((await api(server, "GET", "secret/metadata/bad")).status).toBe(404);
  });

  test("a wrong token exits 1 and changes nothing (no server and sealed: see connection.test.ts)", async () => {
    await write("guarded", { user: "app" });
    const wrong = await egide(["kv", "put", "secret/guarded", "user=intruder"], { env: { ...env, EGIDE_TOKEN: "egs.wrong" } });
    expect(wrong).toEqual({ code: 1, stdout: "", stderr: "egide: permission denied (403)\n" });
    expect(await stored("guarded")).toEqual({ user: "app" });
  });
});
