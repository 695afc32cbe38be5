/**
 * fast-check generators of raw HTTP/1.x requests for the raw-HTTP fuzzer: odd methods (LIST,
 * lower case, unknown, empty, very long), paths (percent-encodings valid and not, dot segments,
 * unicode, control characters, very long, absolute form), versions, headers (duplicates,
 * conflicting framing, huge values, odd content types and encodings) and bodies (invalid and
 * deeply nested JSON, huge numbers, random bytes, chunked framing right or wrong).
 *
 * The vocabulary leaves out what would end the fuzz rather than test it (seal, step-down,
 * revoke, restore, rotate): with the root token, those would turn every later request into a
 * 403 or 503 without exercising anything more.
 */
import fc from "fast-check";

/** One generated request: its bytes, and a one-line summary for failure messages. */
export interface RawRequest {
  bytes: Buffer;
  summary: string;
}

const methodArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom("GET", "POST", "PUT", "DELETE", "LIST", "PATCH") },
  {
    weight: 3,
    arbitrary: fc.constantFrom("HEAD", "OPTIONS", "TRACE", "CONNECT", "get", "list", "post", "Put", "PROPFIND", "M-SEARCH", "PURGE", "FOO"),
  },
  { weight: 1, arbitrary: fc.constantFrom("", "G ET", "GET\t", "A".repeat(300), "LIST\u00e9", "\u0000GET") },
  { weight: 1, arbitrary: fc.stringMatching(/^[A-Za-z!#$%&'*+.^_`|~-]{1,12}$/) },
);

const segmentArb = fc.oneof(
  {
    weight: 8,
    arbitrary: fc.constantFrom(
      "secret",
      "data",
      "metadata",
      "delete",
      "undelete",
      "destroy",
      "subkeys",
      "config",
      "sys",
      "health",
      "policies",
      "acl",
      "policy",
      "mounts",
      "auth",
      "token",
      "lookup-self",
      "lookup",
      "create",
      "renew-self",
      "capabilities-self",
      "wrapping",
      "metrics",
      "cubbyhole",
      "a",
      "b",
      "x",
    ),
  },
  {
    weight: 4,
    arbitrary: fc.constantFrom(
      "..",
      ".",
      "",
      "%2e%2e",
      "%2E.",
      ".%2e",
      "%2F",
      "%2f..%2f",
      "%00",
      "%",
      "%Z",
      "%ZZ",
      "%C3%A9",
      "%FF%FE",
      "%C0%AF",
      "%ED%A0%80",
      "%25",
      "%20",
      "%0d%0a",
      "a b",
      "a\tb",
      "\u00e9t\u00e9",
      "\u{1F511}",
      "\u202e",
      "\u0001",
      "\u007f",
      "..;",
      "data;x=y",
      "\\",
      "a\\..\\b",
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom("a".repeat(5000), "%41".repeat(3000), "x/".repeat(2000)) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 12 }) },
);

const queryArb = fc.constantFrom(
  "",
  "",
  "",
  "?list=true",
  "?list=1",
  "?version=2",
  "?version=-1",
  "?version=abc",
  "?version=99999999999999999999",
  "?depth=0",
  "?a=%ZZ",
  "?list=true&list=false",
  "?#frag",
  `?${"q=1&".repeat(2000)}`,
);

/** Real endpoints (some under a fuzz-only prefix), so that many requests get past routing into the handlers. */
const endpointArb = fc.constantFrom(
  "/v1/secret/data/fz/",
  "/v1/secret/metadata/fz/",
  "/v1/secret/delete/fz/",
  "/v1/secret/undelete/fz/",
  "/v1/secret/destroy/fz/",
  "/v1/secret/subkeys/fz/",
  "/v1/secret/config",
  "/v1/sys/policies/acl/fz",
  "/v1/sys/policy/fz",
  "/v1/auth/token/create",
  "/v1/auth/token/lookup",
  "/v1/auth/token/lookup-self",
  "/v1/auth/token/renew",
  "/v1/sys/capabilities-self",
  "/v1/sys/wrapping/wrap",
  "/v1/sys/wrapping/unwrap",
  "/v1/sys/mounts/fz",
  "/v1/cubbyhole/fz/",
  "/v1/sys/health",
  "/v1/sys/seal-status",
  "/v1/sys/metrics",
);

const pathArb = fc.oneof(
  {
    weight: 10,
    arbitrary: fc
      .tuple(endpointArb, fc.array(segmentArb, { maxLength: 2 }), queryArb)
      .map(([endpoint, segments, query]) => `${endpoint}${endpoint.endsWith("/") ? segments.join("/") || "k" : ""}${query}`),
  },
  {
    weight: 10,
    arbitrary: fc
      .tuple(
        fc.constantFrom("/v1/", "/v1/", "/v1/", "/", "//v1/", "/V1/", "/v1//", "/v2/"),
        fc.array(segmentArb, { maxLength: 6 }),
        queryArb,
      )
      .map(([start, segments, query]) => `${start}${segments.join("/")}${query}`),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      "*",
      "http://127.0.0.1/v1/sys/health",
      "https://egide.invalid/v1/secret/data/a",
      "v1/sys/health",
      "",
      "/v1/sys/health ",
    ),
  },
);

const versionArb = fc.oneof(
  { weight: 12, arbitrary: fc.constant("HTTP/1.1") },
  { weight: 2, arbitrary: fc.constant("HTTP/1.0") },
  { weight: 1, arbitrary: fc.constantFrom("HTTP/2.0", "HTTP/1.1x", "http/1.1", "HTTP/0.9", "", "HTTP/1.1 extra", "HTTP/9.9") },
);

const contentTypeArb = fc.constantFrom(
  "application/json",
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=utf-16",
  "application/merge-patch+json",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=zz",
  "application/octet-stream",
  "",
  "*/*",
  "application/json, text/plain",
  "application/\u00e9json",
  "APPLICATION/JSON",
);

const bodyArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom("", "{}", '{"data":{"a":"b"}}', '{"data":{"a":"b"},"options":{"cas":0}}', '{"versions":[1,2]}') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "{",
      "{]",
      "null",
      "[]",
      '"x"',
      "1e999999",
      '{"data":1e999999}',
      '{"data":{"n":123456789012345678901234567890}}',
      '{"options":{"cas":1e300}}',
      '{"versions":[1e300,-1,"x",null]}',
      '{"__proto__":{"polluted":true},"data":{"constructor":{"prototype":{"x":1}}}}',
      '{"policy":"path \\"*\\" { capabilities = [\\"sudo\\"] }"}',
      '{"ttl":"-1h","policies":["root"]}',
      '{"data":{"a":"\\ud800"}}',
      "\u00ff\u00fe{",
      "\u0000\u0000\u0000",
      "a=b&c=d",
    ),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 10, max: 60_000 }).map((depth) => `{"data":{"a":${"[".repeat(depth)}${"]".repeat(depth)}}}`),
  },
  {
    weight: 1,
    arbitrary: fc.integer({ min: 10, max: 30_000 }).map((depth) => `{"data":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`),
  },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
  { weight: 1, arbitrary: fc.constantFrom("x".repeat(70_000), `{"data":{"big":"${"y".repeat(40_000)}"}}`) },
);

/** How the body is framed: a matching Content-Length, a wrong one, chunked (valid or not), or none. */
type Framing =
  | "length"
  | "none"
  | "short-length"
  | "long-length"
  | "bad-length"
  | "duplicate-length"
  | "chunked"
  | "bad-chunked"
  | "chunked-and-length";

const framingArb = fc.oneof(
  { weight: 10, arbitrary: fc.constant<Framing>("length") },
  { weight: 2, arbitrary: fc.constant<Framing>("none") },
  { weight: 2, arbitrary: fc.constant<Framing>("chunked") },
  {
    weight: 3,
    arbitrary: fc.constantFrom<Framing>(
      "short-length",
      "long-length",
      "bad-length",
      "duplicate-length",
      "bad-chunked",
      "chunked-and-length",
    ),
  },
);

const extraHeaderArb = fc.constantFrom<Array<[string, string]>>(
  [["Content-Encoding", "gzip"]],
  [["Content-Encoding", "deflate, br"]],
  [["Transfer-Encoding", "gzip"]],
  [["Expect", "100-continue"]],
  [["Expect", "nonsense"]],
  [["Connection", "close"]],
  [
    ["Connection", "keep-alive, Upgrade"],
    ["Upgrade", "websocket"],
  ],
  [
    ["Connection", "Upgrade, HTTP2-Settings"],
    ["Upgrade", "h2c"],
    ["HTTP2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"],
  ],
  [
    ["X-Vault-Token", "a"],
    ["X-Vault-Token", "b"],
  ],
  [["X-Vault-Token", "\u00e9\u00e9"]],
  [["X-Vault-Token", "x".repeat(4000)]],
  [["Authorization", "Bearer"]],
  [["Authorization", "Bearer  "]],
  [["X-Vault-Request", "true"]],
  [["X-Vault-Wrap-TTL", "-5"]],
  [["X-Vault-Wrap-TTL", "99999999h"]],
  [["X-Vault-Namespace", "../root"]],
  [["X-Forwarded-For", "1.2.3.4, ::1, nonsense"]],
  [
    ["Host", "a"],
    ["Host", "b"],
  ],
  [["X-Big", "z".repeat(20_000)]],
  Array.from({ length: 120 }, (_, i): [string, string] => [`X-H${i}`, "v"]),
  [["X Space", "v"]],
  [["X-Fold", "a\r\n  folded"]],
  [["NoValue", ""]],
  [["X-Ctl", "a\u0001b"]],
  [["X-Unicode", "\u00e9\u{1F511}"]],
  [["Accept-Encoding", "gzip;q=1, *;q=0"]],
  [["Range", "bytes=0-1"]],
);

/** Encodes a header value or request line the way it is sent: code points above 0xff as UTF-8, the rest as single bytes. */
function bytesOf(text: string): Buffer {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: every byte value below 0x100 is sent as is, control characters included
  return /^[\u0000-\u00ff]*$/.test(text) ? Buffer.from(text, "latin1") : Buffer.from(text, "utf8");
}

function frame(body: Buffer, framing: Framing): { headers: Array<[string, string]>; payload: Buffer } {
  switch (framing) {
    case "length":
      return { headers: [["Content-Length", String(body.length)]], payload: body };
    case "none":
      return { headers: [], payload: body };
    case "short-length":
      return { headers: [["Content-Length", String(Math.max(0, body.length - 3))]], payload: body };
    case "long-length":
      return { headers: [["Content-Length", String(body.length + 5)]], payload: body };
    case "bad-length":
      return { headers: [["Content-Length", "-1"]], payload: body };
    case "duplicate-length":
      return {
        headers: [
          ["Content-Length", String(body.length)],
          ["Content-Length", String(body.length + 1)],
        ],
        payload: body,
      };
    case "chunked":
      return {
        headers: [["Transfer-Encoding", "chunked"]],
        payload: Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]),
      };
    case "bad-chunked":
      return {
        headers: [["Transfer-Encoding", "chunked"]],
        payload: Buffer.concat([Buffer.from(`${(body.length + 7).toString(16)}zz\r\n`), body, Buffer.from("\r\n0\r\n")]),
      };
    case "chunked-and-length":
      return {
        headers: [
          ["Transfer-Encoding", "chunked"],
          ["Content-Length", String(body.length)],
        ],
        payload: Buffer.concat([Buffer.from(`${body.length.toString(16)}\r\n`), body, Buffer.from("\r\n0\r\n\r\n")]),
      };
  }
}

/**
 * Raw requests for a server whose root token is `rootToken` (sent with some of them, so that
 * requests get past authentication into the handlers).
 */
export function rawRequestArbitrary(rootToken: string): fc.Arbitrary<RawRequest> {
  return fc
    .record({
      method: methodArb,
      path: pathArb,
      version: versionArb,
      token: fc.constantFrom<"root" | "none" | "bogus">("root", "root", "none", "bogus"),
      contentType: fc.option(contentTypeArb, { nil: undefined }),
      extra: fc.array(extraHeaderArb, { maxLength: 2 }),
      body: bodyArb,
      framing: framingArb,
      host: fc.oneof({ weight: 9, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
    })
    .map(({ method, path, version, token, contentType, extra, body, framing, host }) => {
      const headers: Array<[string, string]> = [];
      if (host) headers.push(["Host", "127.0.0.1"]);
      if (token === "root") headers.push(["X-Vault-Token", rootToken]);
      if (token === "bogus") headers.push(["X-Vault-Token", "egs.bogus"]);
      if (contentType !== undefined) headers.push(["Content-Type", contentType]);
      for (const group of extra) headers.push(...group);
      const framed = frame(bytesOf(body), framing);
      headers.push(...framed.headers);
      const head = bytesOf(`${method} ${path} ${version}\r\n${headers.map(([n, v]) => `${n}: ${v}`).join("\r\n")}\r\n\r\n`);
      const short = (text: string) => JSON.stringify(text.length > 80 ? `${text.slice(0, 80)}…(${text.length})` : text);
      const summary = `${short(method)} ${short(path)} ${short(version)} framing=${framing} headers=${short(headers.map(([n]) => n).join(","))} body=${short(body)}`;
      return { bytes: Buffer.concat([head, framed.payload]), summary };
    });
}
