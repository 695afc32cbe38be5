import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Duplex } from "node:stream";
import * as tls from "node:tls";
import { selfSignedCertificate } from "@egide/test-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ListMethodFilterStream, listMethodFilter } from "../src/http/list-method-filter.js";
import { ListRequestRewriter, MAX_HEAD_BYTES, ORIGINAL_METHOD_LIST } from "../src/http/list-request-rewriter.js";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** What the echo handler answers. */
interface Echo {
  method: string;
  url: string;
  original: string | null;
  body: string | null;
  bodyLength: number;
  bodySha256: string;
  remoteAddress: string | undefined;
  remotePort: number | undefined;
  encrypted: boolean;
}

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

interface Fronted {
  port: number;
  http: http.Server;
  close(): Promise<void>;
}

const sha256 = (data: Buffer): string => createHash("sha256").update(data).digest("hex");
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function echoHandler(req: http.IncomingMessage, res: http.ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on("data", (chunk: Buffer) => chunks.push(chunk));
  req.on("end", () => {
    const body = Buffer.concat(chunks);
    const socket = req.socket as net.Socket & { encrypted?: boolean };
    const echo: Echo = {
      method: req.method ?? "",
      url: req.url ?? "",
      original: (req.headers["x-egide-original-method"] as string | undefined) ?? null,
      body: body.length <= 4096 ? body.toString("latin1") : null,
      bodyLength: body.length,
      bodySha256: sha256(body),
      remoteAddress: socket.remoteAddress,
      remotePort: socket.remotePort,
      encrypted: socket.encrypted === true,
    };
    const payload = Buffer.from(JSON.stringify(echo));
    res.writeHead(200, { "content-type": "application/json", "content-length": payload.length });
    res.end(payload);
  });
}

async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as net.AddressInfo).port;
}

async function closeServer(server: net.Server, httpServer: http.Server): Promise<void> {
  httpServer.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

/** An HTTP server fronted by a net server that passes each socket through the filter. */
async function startPlain(handler = echoHandler): Promise<Fronted> {
  // No 'clientError' listener: Node's own answer (400/431, then destroy) on the filtered connection.
  const httpServer = http.createServer(handler);
  const sockets = new Set<net.Socket>();
  const front = net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    httpServer.emit("connection", listMethodFilter(socket));
  });
  const port = await listen(front);
  return {
    port,
    http: httpServer,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await closeServer(front, httpServer);
    },
  };
}

/** Reads HTTP responses off a socket (Content-Length bodies, or until close). */
function responseReader(socket: Duplex): { next(count: number): Promise<RawResponse[]>; closed: Promise<void> } {
  let buffer = Buffer.alloc(0);
  let ended = false;
  const parsed: RawResponse[] = [];
  let waiter: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    socket.on("close", () => resolve());
  });
  const parse = (): void => {
    for (;;) {
      const headEnd = buffer.indexOf("\r\n\r\n");
      if (headEnd === -1) return;
      const lines = buffer.subarray(0, headEnd).toString("latin1").split("\r\n");
      const status = Number(lines[0]!.split(" ")[1]);
      const headers: Record<string, string> = {};
      for (const line of lines.slice(1)) {
        const colon = line.indexOf(":");
        headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = headers["content-length"];
      let bodyEnd: number;
      if (length !== undefined) {
        bodyEnd = headEnd + 4 + Number(length);
        if (buffer.length < bodyEnd) return;
      } else if (status === 100 || status === 101) {
        bodyEnd = headEnd + 4;
      } else {
        if (!ended) return;
        bodyEnd = buffer.length;
      }
      parsed.push({ status, headers, body: buffer.subarray(headEnd + 4, bodyEnd) });
      buffer = buffer.subarray(bodyEnd);
      if (status === 101) return;
    }
  };
  const wake = (): void => {
    parse();
    waiter?.();
  };
  socket.on("data", (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    wake();
  });
  socket.on("end", () => {
    ended = true;
    wake();
  });
  socket.on("close", () => {
    ended = true;
    wake();
  });
  socket.on("error", () => {});
  return {
    closed,
    async next(count: number): Promise<RawResponse[]> {
      while (parsed.length < count && !ended) {
        await new Promise<void>((resolve) => {
          waiter = resolve;
        });
        waiter = undefined;
      }
      return parsed.splice(0, count);
    },
  };
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ port, host: "127.0.0.1", noDelay: true });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  return socket;
}

/** Sends `pieces` (one write each, `delayMs` apart) and reads `count` responses. */
async function exchange(port: number, pieces: Array<string | Buffer>, count: number, delayMs = 0): Promise<RawResponse[]> {
  const socket = await connect(port);
  const reader = responseReader(socket);
  try {
    for (const piece of pieces) {
      socket.write(piece);
      if (delayMs > 0) await sleep(delayMs);
    }
    return await reader.next(count);
  } finally {
    socket.destroy();
  }
}

const echoOf = (response: RawResponse): Echo => {
  expect(response.status).toBe(200);
  return JSON.parse(response.body.toString("utf8")) as Echo;
};

function chunked(body: string | Buffer, sizes: number[], extension = ""): Buffer {
  const data = Buffer.from(body);
  const parts: Buffer[] = [];
  let offset = 0;
  let index = 0;
  while (offset < data.length) {
    const size = Math.min(sizes[index % sizes.length]!, data.length - offset);
    parts.push(Buffer.from(`${size.toString(16)}${extension}\r\n`), data.subarray(offset, offset + size), Buffer.from("\r\n"));
    offset += size;
    index++;
  }
  parts.push(Buffer.from("0\r\n\r\n"));
  return Buffer.concat(parts);
}

/** A stand-in socket whose incoming chunks the test controls exactly. */
class FakeSocket extends Duplex {
  written: Buffer[] = [];
  readCalls = 0;
  writeDelayMs = 0;
  constructor() {
    super({ allowHalfOpen: true, highWaterMark: 1024 });
  }
  override _read(): void {
    this.readCalls++;
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.written.push(chunk);
    if (this.writeDelayMs > 0) setTimeout(callback, this.writeDelayMs);
    else callback();
  }
  setTimeout(): this {
    return this;
  }
}

function fakeFilter(): { fake: FakeSocket; filter: ListMethodFilterStream } {
  const fake = new FakeSocket();
  const filter = listMethodFilter(fake as unknown as net.Socket);
  return { fake, filter };
}

/** Runs the rewriter over `chunks` and returns what it forwards. */
function rewrite(chunks: Array<string | Buffer>): string {
  const rewriter = new ListRequestRewriter();
  const out: Buffer[] = [];
  for (const chunk of chunks) out.push(...rewriter.process(Buffer.from(chunk)));
  const rest = rewriter.end();
  if (rest) out.push(rest);
  return Buffer.concat(out).toString("latin1");
}

/** Every way of cutting `input` in one place, plus one byte per chunk. */
function splits(input: string): string[][] {
  const result: string[][] = [[input], input.split("")];
  for (let cut = 1; cut < input.length; cut++) result.push([input.slice(0, cut), input.slice(cut)]);
  return result;
}

// ---------------------------------------------------------------------------------------------
// The rewriter on exact chunk boundaries
// ---------------------------------------------------------------------------------------------

describe("ListRequestRewriter", () => {
  const H = `X-Egide-Original-Method: ${ORIGINAL_METHOD_LIST}\r\n`;
  const cases: Array<[string, string, string]> = [
    [
      "LIST without query",
      "LIST /v1/secret/metadata HTTP/1.1\r\nHost: x\r\n\r\n",
      `GET /v1/secret/metadata?list=true HTTP/1.1\r\n${H}Host: x\r\n\r\n`,
    ],
    ["LIST with query", "LIST /v1/kv?a=1 HTTP/1.1\r\nHost: x\r\n\r\n", `GET /v1/kv?a=1&list=true HTTP/1.1\r\n${H}Host: x\r\n\r\n`],
    ["LIST with empty query", "LIST /v1/kv? HTTP/1.1\r\n\r\n", `GET /v1/kv?list=true HTTP/1.1\r\n${H}\r\n`],
    ["LIST with fragment", "LIST /a#frag HTTP/1.0\r\n\r\n", `GET /a?list=true#frag HTTP/1.0\r\n${H}\r\n`],
    ["GET", "GET /LIST HTTP/1.1\r\nHost: x\r\n\r\n", "GET /LIST HTTP/1.1\r\nHost: x\r\n\r\n"],
    ["LISTEN is not LIST", "LISTEN / HTTP/1.1\r\n\r\n", "LISTEN / HTTP/1.1\r\n\r\n"],
    ["LIS is not LIST", "LIS / HTTP/1.1\r\n\r\n", "LIS / HTTP/1.1\r\n\r\n"],
    ["list is not LIST", "list / HTTP/1.1\r\n\r\n", "list / HTTP/1.1\r\n\r\n"],
    [
      "Content-Length body holding a LIST line, then LIST",
      "POST /a HTTP/1.1\r\nContent-Length: 22\r\n\r\nLIST /x HTTP/1.1\r\n\r\n\r\nLIST /b HTTP/1.1\r\n\r\n",
      `POST /a HTTP/1.1\r\nContent-Length: 22\r\n\r\nLIST /x HTTP/1.1\r\n\r\n\r\nGET /b?list=true HTTP/1.1\r\n${H}\r\n`,
    ],
    [
      "chunked body with extensions and trailers, then LIST",
      "PUT /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nLIST \r\nB\r\n/z HTTP/1.1\r\n0\r\nX-T: LIST / HTTP/1.1\r\n\r\nLIST /c HTTP/1.1\r\n\r\n",
      `PUT /a HTTP/1.1\r\ntransfer-encoding: chunked\r\n\r\n5;x=y\r\nLIST \r\nB\r\n/z HTTP/1.1\r\n0\r\nX-T: LIST / HTTP/1.1\r\n\r\nGET /c?list=true HTTP/1.1\r\n${H}\r\n`,
    ],
    ["leading empty lines", "\r\nLIST /d HTTP/1.1\r\n\r\n", `\r\nGET /d?list=true HTTP/1.1\r\n${H}\r\n`],
    [
      "obs-fold does not hide Content-Length",
      "POST / HTTP/1.1\r\nContent-Length:\r\n 5\r\n\r\nLIST LIST /e HTTP/1.1\r\n\r\n",
      `POST / HTTP/1.1\r\nContent-Length:\r\n 5\r\n\r\nLIST GET /e?list=true HTTP/1.1\r\n${H}\r\n`,
    ],
    [
      "Upgrade: everything after passes through",
      "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nLIST /f HTTP/1.1\r\n\r\n",
      "GET /ws HTTP/1.1\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\nLIST /f HTTP/1.1\r\n\r\n",
    ],
    [
      "CONNECT: everything after passes through",
      "CONNECT a:1 HTTP/1.1\r\n\r\nLIST /g HTTP/1.1\r\n\r\n",
      "CONNECT a:1 HTTP/1.1\r\n\r\nLIST /g HTTP/1.1\r\n\r\n",
    ],
    [
      "malformed Content-Length: pass through",
      "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\nLIST /h HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\nLIST /h HTTP/1.1\r\n\r\n",
    ],
    [
      "two Content-Lengths: pass through",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nxLIST /h HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nxLIST /h HTTP/1.1\r\n\r\n",
    ],
    [
      "malformed chunk size: pass through",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nLIST /i HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nLIST /i HTTP/1.1\r\n\r\n",
    ],
    [
      "Transfer-Encoding and Content-Length: pass through",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nLIST /j HTTP/1.1\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\nLIST /j HTTP/1.1\r\n\r\n",
    ],
    [
      "bare LF line ends",
      "LIST /k HTTP/1.1\nHost: x\n\nLIST /l HTTP/1.1\n\n",
      `GET /k?list=true HTTP/1.1\n${H}Host: x\n\nGET /l?list=true HTTP/1.1\n${H}\n`,
    ],
    ["truncated LIST is forwarded at the end", "LIS", "LIS"],
  ];

  for (const [name, input, expected] of cases) {
    it(`${name}, on every chunk boundary`, () => {
      for (const chunks of splits(input)) expect(rewrite(chunks)).toBe(expected);
    });
  }

  it("gives up on a head over the limit, and never holds back more than 4 bytes", () => {
    const rewriter = new ListRequestRewriter();
    const head = `GET / HTTP/1.1\r\nX-Big: ${"a".repeat(MAX_HEAD_BYTES)}\r\n\r\nLIST / HTTP/1.1\r\n\r\n`;
    expect(Buffer.concat(rewriter.process(Buffer.from(head))).toString("latin1")).toBe(head);
    expect(rewriter.passthrough).toBe(true);

    const listHead = `LIST /${"a".repeat(MAX_HEAD_BYTES)} HTTP/1.1\r\n\r\n`;
    const out = rewrite([listHead]);
    expect(out.startsWith("GET /aaa")).toBe(true);
    expect(out.includes("?list=true")).toBe(false);

    const held = new ListRequestRewriter();
    expect(Buffer.concat(held.process(Buffer.from("LIST"))).length).toBe(0);
    expect(Buffer.concat(held.process(Buffer.from(" /"))).toString()).toBe("GET /");
  });
});

// ---------------------------------------------------------------------------------------------
// The Duplex on a controlled stand-in socket
// ---------------------------------------------------------------------------------------------

describe("ListMethodFilterStream plumbing", () => {
  it("pauses the socket when the reader does not keep up, and resumes it", async () => {
    const { fake, filter } = fakeFilter();
    const big = Buffer.alloc(256 * 1024, 0x61);
    const head = Buffer.from(`POST / HTTP/1.1\r\nContent-Length: ${big.length}\r\n\r\n`);
    fake.push(head);
    for (let offset = 0; offset < big.length; offset += 16 * 1024) fake.push(big.subarray(offset, offset + 16 * 1024));
    await sleep(20);
    expect(fake.isPaused()).toBe(true);
    expect(filter.readableLength).toBeGreaterThanOrEqual(filter.readableHighWaterMark);
    const received: Buffer[] = [];
    filter.on("data", (chunk: Buffer) => received.push(chunk));
    await sleep(20);
    expect(fake.isPaused()).toBe(false);
    expect(Buffer.concat(received).length).toBe(big.length + head.length);
    filter.destroy();
  });

  it("writes in order with a slow socket and finishes only after the socket flushed", async () => {
    const { fake, filter } = fakeFilter();
    fake.writeDelayMs = 2;
    const pieces = Array.from({ length: 50 }, (_, index) => Buffer.from(`piece ${index};`.padEnd(100, ".")));
    let sawBackpressure = false;
    for (const piece of pieces) if (!filter.write(piece)) sawBackpressure = true;
    expect(sawBackpressure).toBe(true);
    filter.cork();
    filter.write("x");
    filter.write("y");
    process.nextTick(() => filter.uncork());
    const fakeFinished = new Promise<void>((resolve) => fake.once("finish", resolve));
    let fakeWasFinished = false;
    await new Promise<void>((resolve) => {
      filter.end(() => {
        fakeWasFinished = fake.writableFinished;
        resolve();
      });
    });
    await fakeFinished;
    expect(fakeWasFinished).toBe(true);
    expect(Buffer.concat(fake.written).toString()).toBe(Buffer.concat([...pieces, Buffer.from("xy")]).toString());
  });

  it("propagates end and destroy both ways, and socket errors as errors", async () => {
    const a = fakeFilter();
    const ended = new Promise<void>((resolve) => a.filter.once("end", resolve));
    a.filter.resume();
    a.fake.push(Buffer.from("LIS"));
    a.fake.push(null);
    const seen: Buffer[] = [];
    a.filter.on("data", (chunk: Buffer) => seen.push(chunk));
    await ended;
    expect(Buffer.concat(seen).toString()).toBe("LIS");

    const b = fakeFilter();
    b.filter.destroy();
    await sleep(1);
    expect(b.fake.destroyed).toBe(true);

    const c = fakeFilter();
    const errors: Error[] = [];
    c.filter.on("error", (error) => errors.push(error));
    const closed = new Promise<void>((resolve) => c.filter.once("close", resolve));
    c.fake.destroy(new Error("boom"));
    await closed;
    expect(errors.map((error) => error.message)).toEqual(["boom"]);

    // Nobody listens for errors: a plain destroy, no unhandled 'error'.
    const d = fakeFilter();
    const dClosed = new Promise<void>((resolve) => d.filter.once("close", resolve));
    d.fake.destroy(new Error("unheard"));
    await dClosed;
    expect(d.filter.destroyed).toBe(true);
  });

  it("re-emits the socket's 'timeout' and delegates setTimeout", async () => {
    const { fake, filter } = fakeFilter();
    let calls = 0;
    filter.setTimeout(1000, () => calls++);
    fake.emit("timeout");
    fake.emit("timeout");
    expect(calls).toBe(1);
    filter.destroy();
  });
});

// ---------------------------------------------------------------------------------------------
// Real sockets: Node's HTTP server behind the filter
// ---------------------------------------------------------------------------------------------

describe("listMethodFilter in front of Node's HTTP server", () => {
  let server: Fronted;

  beforeAll(async () => {
    server = await startPlain();
  });

  afterAll(async () => {
    await server.close();
  });

  it("turns LIST into GET with list=true and the original-method header", async () => {
    const [plain, withQuery] = await exchange(
      server.port,
      [
        "LIST /v1/secret/metadata/ HTTP/1.1\r\nHost: localhost\r\n\r\nLIST /v1/secret/metadata/a?foo=bar HTTP/1.1\r\nHost: localhost\r\n\r\n",
      ],
      2,
    );
    const first = echoOf(plain!);
    expect(first).toMatchObject({ method: "GET", url: "/v1/secret/metadata/?list=true", original: ORIGINAL_METHOD_LIST, bodyLength: 0 });
    expect(first.remoteAddress).toBe("127.0.0.1");
    expect(first.encrypted).toBe(false);
    expect(echoOf(withQuery!)).toMatchObject({
      method: "GET",
      url: "/v1/secret/metadata/a?foo=bar&list=true",
      original: ORIGINAL_METHOD_LIST,
    });
  });

  it("serves LIST sent by Node's own HTTP client, and passes the remote address and port", async () => {
    const agent = new http.Agent({ keepAlive: false });
    let clientPort: number | undefined;
    const echo = await new Promise<Echo>((resolve, reject) => {
      const req = http.request({ host: "127.0.0.1", port: server.port, path: "/v1/sys/policy", method: "LIST", agent }, (res) => {
        clientPort = res.socket.localPort;
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Echo));
      });
      req.on("error", reject);
      req.end();
    });
    expect(echo).toMatchObject({
      method: "GET",
      url: "/v1/sys/policy?list=true",
      original: ORIGINAL_METHOD_LIST,
      remoteAddress: "127.0.0.1",
    });
    expect(echo.remotePort).toBe(clientPort);
  });

  it("passes GET, POST, PUT, DELETE and PATCH unchanged, with Content-Length and chunked bodies", async () => {
    const body = "LIST /v1/secret HTTP/1.1\r\n\r\nLIST / HTTP/1.1\r\n";
    const requests = [
      "GET /v1/LIST?x=LIST HTTP/1.1\r\nHost: h\r\n\r\n",
      `POST /v1/a HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      `PUT /v1/b HTTP/1.1\r\nHost: h\r\ncontent-length: ${body.length}\r\n\r\n${body}`,
      `PATCH /v1/c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(body, [5, 1, 12]).toString("latin1")}`,
      `DELETE /v1/d HTTP/1.1\r\nHost: h\r\nTRANSFER-ENCODING: Chunked\r\n\r\n${chunked(body, [40], ";ext=LIST").toString("latin1")}`,
    ];
    const responses = await exchange(server.port, [requests.join("")], requests.length);
    const echoes = responses.map(echoOf);
    expect(echoes.map((echo) => [echo.method, echo.url, echo.original])).toEqual([
      ["GET", "/v1/LIST?x=LIST", null],
      ["POST", "/v1/a", null],
      ["PUT", "/v1/b", null],
      ["PATCH", "/v1/c", null],
      ["DELETE", "/v1/d", null],
    ]);
    for (const echo of echoes.slice(1)) expect(echo.body).toBe(body);
  });

  it("keeps a keep-alive connection going across LIST and POST requests", async () => {
    const socket = await connect(server.port);
    const reader = responseReader(socket);
    const results: Echo[] = [];
    for (let round = 0; round < 3; round++) {
      socket.write(`LIST /v1/kv/${round} HTTP/1.1\r\nHost: h\r\n\r\n`);
      results.push(echoOf((await reader.next(1))[0]!));
      const body = `{"data":"LIST /${round} HTTP/1.1"}`;
      socket.write(`POST /v1/kv/${round} HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
      results.push(echoOf((await reader.next(1))[0]!));
    }
    socket.destroy();
    expect(results.map((echo) => `${echo.method} ${echo.url} ${echo.original ?? "-"}`)).toEqual([
      `GET /v1/kv/0?list=true ${ORIGINAL_METHOD_LIST}`,
      "POST /v1/kv/0 -",
      `GET /v1/kv/1?list=true ${ORIGINAL_METHOD_LIST}`,
      "POST /v1/kv/1 -",
      `GET /v1/kv/2?list=true ${ORIGINAL_METHOD_LIST}`,
      "POST /v1/kv/2 -",
    ]);
    expect(results.every((echo) => echo.remotePort === results[0]!.remotePort)).toBe(true);
  });

  it("handles pipelined requests in a single write", async () => {
    const post = "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 18\r\n\r\nLIST /no HTTP/1.1\n";
    const stream = [
      "LIST /one HTTP/1.1\r\nHost: h\r\n\r\n",
      post,
      "LIST /two?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
      "GET /three HTTP/1.1\r\nHost: h\r\n\r\n",
      post,
      "LIST /four HTTP/1.1\r\nHost: h\r\n\r\n",
    ].join("");
    const echoes = (await exchange(server.port, [stream], 6)).map(echoOf);
    expect(echoes.map((echo) => `${echo.method} ${echo.url}`)).toEqual([
      "GET /one?list=true",
      "POST /p",
      "GET /two?x=1&list=true",
      "GET /three",
      "POST /p",
      "GET /four?list=true",
    ]);
    expect(echoes[1]!.body).toBe("LIST /no HTTP/1.1\n");
  });

  it("handles a request delivered one byte per write", async () => {
    const request = "LIST /v1/slow?a=b HTTP/1.1\r\nHost: h\r\nContent-Length: 4\r\n\r\nbody";
    const [response] = await exchange(server.port, request.split(""), 1, 2);
    expect(echoOf(response!)).toMatchObject({ method: "GET", url: "/v1/slow?a=b&list=true", original: ORIGINAL_METHOD_LIST, body: "body" });
  });

  it("handles a body split across writes, then a LIST on the same connection", async () => {
    const body = "LIST / HTTP/1.1\r\n\r\n".repeat(20);
    const framed = chunked(body, [7, 100]).toString("latin1");
    const pieces = [
      `POST /split HTTP/1.1\r\nHost: h\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 13)}`,
      body.slice(13, 200),
      body.slice(200),
      `PUT /chunks HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n${framed.slice(0, 30)}`,
      framed.slice(30, 31),
      framed.slice(31, framed.length - 3),
      framed.slice(framed.length - 3),
      "LIST /after HTTP/1.1\r\nHost: h\r\n\r\n",
    ];
    const echoes = (await exchange(server.port, pieces, 3, 5)).map(echoOf);
    expect(echoes.map((echo) => `${echo.method} ${echo.url} ${echo.body === body}`)).toEqual([
      "POST /split true",
      "PUT /chunks true",
      "GET /after?list=true false",
    ]);
  });

  it("passes a 1 MiB body intact", async () => {
    const big = Buffer.alloc(1024 * 1024);
    for (let index = 0; index < big.length; index++) big[index] = (index * 31 + 7) & 0xff;
    big.write("LIST / HTTP/1.1\r\n\r\n", 4096, "latin1");
    const head = Buffer.from(`PUT /big HTTP/1.1\r\nHost: h\r\nContent-Length: ${big.length}\r\n\r\n`);
    const [response, after] = await exchange(server.port, [head, big, "LIST /then HTTP/1.1\r\nHost: h\r\n\r\n"], 2);
    expect(echoOf(response!)).toMatchObject({ method: "PUT", bodyLength: big.length, bodySha256: sha256(big) });
    expect(echoOf(after!)).toMatchObject({ method: "GET", url: "/then?list=true" });
  });

  it("answers 400 to a malformed head or framing without crashing", async () => {
    const malformed = [
      "GARBAGE\r\n\r\n",
      "list /lower HTTP/1.1\r\nHost: h\r\n\r\n",
      "LISTEN / HTTP/1.1\r\nHost: h\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 12abc\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "LIST /x HTTP/1.1\r\nBad Header Line\r\n\r\n",
    ];
    for (const request of malformed) {
      const [response] = await exchange(server.port, [request], 1);
      expect(response?.status, request).toBe(400);
    }
    const [tooLarge] = await exchange(server.port, [`GET / HTTP/1.1\r\nX-Big: ${"a".repeat(100 * 1024)}\r\n\r\n`], 1);
    expect(tooLarge?.status).toBe(431);
    const [ok] = await exchange(server.port, ["LIST /still-alive HTTP/1.1\r\nHost: h\r\n\r\n"], 1);
    expect(echoOf(ok!).url).toBe("/still-alive?list=true");
  });

  it("survives clients that reset the connection mid-request", async () => {
    const partials = [
      "LIS",
      "LIST /v1/a",
      "LIST /v1/a HTTP/1.1\r\nHost: h\r\n",
      "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\nabc",
      "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nabc",
    ];
    for (const partial of partials) {
      const socket = await connect(server.port);
      socket.on("error", () => {});
      socket.write(partial);
      await sleep(10);
      socket.resetAndDestroy();
    }
    // A reset while the server writes a big response.
    const bigServer = await startPlain((_req, res) => {
      res.writeHead(200, { "content-length": 8 * 1024 * 1024 });
      const chunk = Buffer.alloc(64 * 1024, 0x62);
      let sent = 0;
      const pump = (): void => {
        while (sent < 128) {
          sent++;
          if (!res.write(chunk)) {
            res.once("drain", pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const socket = await connect(bigServer.port);
    socket.on("error", () => {});
    socket.write("LIST /big HTTP/1.1\r\nHost: h\r\n\r\n");
    await new Promise<void>((resolve) => socket.once("data", () => resolve()));
    socket.pause();
    await sleep(20);
    socket.resetAndDestroy();
    await sleep(50);
    await bigServer.close();

    await sleep(20);
    const [ok] = await exchange(server.port, ["LIST /after-reset HTTP/1.1\r\nHost: h\r\n\r\n"], 1);
    expect(echoOf(ok!).url).toBe("/after-reset?list=true");
  });

  it("passes an upgraded connection through untouched", async () => {
    const upgradeServer = await startPlain();
    upgradeServer.http.on("upgrade", (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on("error", () => {});
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nX-Url: ${req.url}\r\n\r\n`);
      if (head.length > 0) socket.write(head);
      socket.pipe(socket);
    });
    const socket = await connect(upgradeServer.port);
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.write("GET /echo HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\nLIST /raw HTTP/1.1\r\n\r\n");
    await sleep(30);
    socket.write("LIST /again HTTP/1.1\r\n\r\n");
    await sleep(30);
    socket.destroy();
    await upgradeServer.close();
    const text = Buffer.concat(received).toString("latin1");
    expect(text).toContain("HTTP/1.1 101 Switching Protocols");
    expect(text).toContain("X-Url: /echo\r\n");
    expect(text.endsWith("\r\n\r\nLIST /raw HTTP/1.1\r\n\r\nLIST /again HTTP/1.1\r\n\r\n")).toBe(true);
  });

  it("closes idle keep-alive connections through the forwarded 'timeout' event", async () => {
    const timed = await startPlain();
    timed.http.keepAliveTimeout = 50;
    const socket = await connect(timed.port);
    const reader = responseReader(socket);
    socket.write("LIST /idle HTTP/1.1\r\nHost: h\r\n\r\n");
    const [response] = await reader.next(1);
    expect(echoOf(response!).url).toBe("/idle?list=true");
    const started = Date.now();
    await reader.closed;
    // Node 20 adds a 1 s buffer to keepAliveTimeout for the socket's own timer.
    expect(Date.now() - started).toBeLessThan(5000);
    await timed.close();
  });
});

// ---------------------------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------------------------

describe("listMethodFilter over TLS", () => {
  let dir: string;
  let cert: Buffer;
  let key: Buffer;
  let front: tls.Server;
  let httpServer: http.Server;
  let port: number;
  const sockets = new Set<tls.TLSSocket>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "egide-list-filter-"));
    const files = selfSignedCertificate(dir, { commonName: "localhost", subjectAltName: "DNS:localhost,IP:127.0.0.1" });
    cert = readFileSync(files.certFile);
    key = readFileSync(files.keyFile);
    httpServer = http.createServer(echoHandler);
    front = tls.createServer({ cert, key, allowHalfOpen: true }, (socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
      httpServer.emit("connection", listMethodFilter(socket));
    });
    front.on("tlsClientError", () => {});
    port = await listen(front);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await closeServer(front, httpServer);
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves LIST over https with encrypted true", async () => {
    const agent = new https.Agent({ keepAlive: true, ca: cert });
    const request = (method: string, path: string, body?: string): Promise<Echo> =>
      new Promise((resolve, reject) => {
        const req = https.request({ host: "127.0.0.1", servername: "localhost", port, path, method, agent }, (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () => resolve(JSON.parse(Buffer.concat(chunks).toString()) as Echo));
        });
        req.on("error", reject);
        req.end(body);
      });
    const listed = await request("LIST", "/v1/secret/metadata");
    expect(listed).toMatchObject({
      method: "GET",
      url: "/v1/secret/metadata?list=true",
      original: ORIGINAL_METHOD_LIST,
      encrypted: true,
      remoteAddress: "127.0.0.1",
    });
    const posted = await request("POST", "/v1/secret/data/a", "LIST / HTTP/1.1\r\n\r\n");
    expect(posted).toMatchObject({ method: "POST", original: null, body: "LIST / HTTP/1.1\r\n\r\n", encrypted: true });
    const again = await request("LIST", "/v1/secret/metadata?x=1");
    expect(again).toMatchObject({ url: "/v1/secret/metadata?x=1&list=true", remotePort: listed.remotePort });
    agent.destroy();
  });

  it("survives a TLS client that resets mid-request", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: cert });
    socket.on("error", () => {});
    await new Promise<void>((resolve) => socket.once("secureConnect", () => resolve()));
    socket.write("LIST /v1/a HTTP/1.1\r\nHost: h\r\n");
    await sleep(10);
    socket.destroy();
    await sleep(20);
    const pieces = "LIST /tls-bytes HTTP/1.1\r\nHost: h\r\n\r\n".split("");
    const client = tls.connect({ host: "127.0.0.1", port, servername: "localhost", ca: cert });
    await new Promise<void>((resolve) => client.once("secureConnect", () => resolve()));
    const reader = responseReader(client);
    for (const piece of pieces) {
      client.write(piece);
      await sleep(1);
    }
    const [response] = await reader.next(1);
    client.destroy();
    expect(echoOf(response!)).toMatchObject({ url: "/tls-bytes?list=true", encrypted: true });
  });
});
