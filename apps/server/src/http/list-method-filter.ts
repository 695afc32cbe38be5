/**
 * Support for the `LIST` HTTP method of Vault clients.
 *
 * The Go `vault` CLI (`vault list`) sends requests whose method is `LIST`. Node's HTTP parser
 * (llhttp) does not know that method and answers 400 before any framework sees the request. So
 * each connection's byte stream goes through {@link listMethodFilter} before it reaches Node's
 * HTTP server: a request line `LIST <target> HTTP/1.x` becomes `GET <target'> HTTP/1.x`, where
 * `target'` carries the query parameter `list=true`, and the header line
 * `X-Egide-Original-Method: LIST` is inserted right after it. Every other byte passes unchanged.
 *
 * The filter follows request boundaries (Content-Length and chunked bodies) so that keep-alive
 * and pipelined requests work and body bytes are never mistaken for a request line. When the
 * stream is something it does not understand (a malformed Content-Length or chunk size, a head
 * over {@link MAX_HEAD_BYTES}, an Upgrade or CONNECT request), it stops rewriting and passes the
 * rest of the connection through unchanged: Node's parser then answers 400/431 itself, or the
 * upgraded protocol gets its bytes untouched.
 *
 * It does not remove an `X-Egide-Original-Method` header a client sends itself: a plain
 * `GET ?list=true` is Vault's own spelling of a list request, so the header grants nothing.
 */
import { Duplex } from "node:stream";
import type * as net from "node:net";
import type * as tls from "node:tls";

/** A request head (request line and header lines) longer than this stops the rewriting. */
export const MAX_HEAD_BYTES = 64 * 1024;

/** The header inserted after a rewritten request line. */
export const ORIGINAL_METHOD_HEADER = "X-Egide-Original-Method";

const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HT = 0x09;
const QUESTION = 0x3f;
const AMPERSAND = 0x26;
const HASH = 0x23;

const LIST_BYTES = Buffer.from("LIST", "latin1");
const GET_SP = Buffer.from("GET ", "latin1");
const HEADER_LINE = Buffer.from(`${ORIGINAL_METHOD_HEADER}: LIST\r\n`, "latin1");
const QUERY_FIRST = Buffer.from("?list=true", "latin1");
const QUERY_NEXT = Buffer.from("&list=true", "latin1");
const QUERY_BARE = Buffer.from("list=true", "latin1");

/** The longest method kept for inspection (only `LIST` and `CONNECT` matter). */
const MAX_KEPT_METHOD = 16;
/** Content-Length values up to 15 digits (below 2^53); more is treated as malformed. */
const CONTENT_LENGTH = /^[0-9]{1,15}$/;
/** Chunk sizes up to 12 hex digits (256 TiB); more is treated as malformed. */
const CHUNK_SIZE = /^([0-9a-fA-F]{1,12})(?:[;\t ]|$)/;

type State =
  /** Before a request line; empty lines (CR, LF) pass as llhttp skips them. */
  | "start"
  /** Reading the method token. */
  | "method"
  /** After `LIST `: the request target, until the place where `list=true` goes. */
  | "listTarget"
  /** The rest of a rewritten request line, until its LF. */
  | "listLineRest"
  /** The rest of any other request line, until its LF. */
  | "requestLine"
  /** Header lines, until the empty line. */
  | "headers"
  /** A Content-Length body. */
  | "body"
  /** A chunk-size line (with optional extensions). */
  | "chunkSize"
  /** Chunk data. */
  | "chunkData"
  /** The CRLF after chunk data. */
  | "chunkDataEnd"
  /** Trailer lines after the last chunk, until the empty line. */
  | "trailers"
  /** Everything from here on passes unchanged. */
  | "passthrough";

/** The headers that decide where a request ends. */
type FramingHeader = { name: "content-length" | "transfer-encoding" | "upgrade"; value: string };

/**
 * The byte-stream rewriter, one per connection: {@link process} takes the incoming chunks in
 * order and returns the bytes to forward; {@link end} returns what it still holds at the end.
 * It holds back at most the 4 bytes of a method that may still turn out to be `LIST`; all
 * other bytes are forwarded as soon as they arrive.
 */
export class ListRequestRewriter {
  #state: State = "start";
  /** The method token read so far (at most {@link MAX_KEPT_METHOD} characters). */
  #method = "";
  /** Whether every method byte so far matched `LIST` (those bytes are held back). */
  #candidate = false;
  /** How many bytes of `LIST` are held back. */
  #held = 0;
  /** Bytes of the current head (or trailer section, or chunk-size line). */
  #headBytes = 0;
  /** The current header, trailer or chunk-size line so far (latin1). */
  #line = "";
  #framing: FramingHeader[] = [];
  /** The framing header an obs-fold continuation line would extend. */
  #lastFraming: FramingHeader | undefined;
  /** Bytes left in a Content-Length body or in a chunk. */
  #remaining = 0;
  #sawQuery = false;
  #lastTargetByte = 0;
  #sawChunkCr = false;

  /** Whether the rewriter gave up and passes everything through from now on. */
  get passthrough(): boolean {
    return this.#state === "passthrough";
  }

  /** Takes the next incoming chunk; returns the bytes to forward, in order. */
  process(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    const n = chunk.length;
    let from = 0; // the start of the part of `chunk` not yet forwarded
    let i = 0;
    while (i < n) {
      switch (this.#state) {
        case "passthrough":
          i = n;
          break;

        case "start": {
          const b = chunk[i]!;
          if (b === CR || b === LF) {
            i++;
          } else {
            this.#beginRequest();
          }
          break;
        }

        case "method": {
          const b = chunk[i]!;
          if (b === SP) {
            if (this.#candidate && this.#held === LIST_BYTES.length) {
              // `LIST ` complete: forward `GET ` instead of the held `LIST` and this space.
              out.push(GET_SP);
              this.#held = 0;
              this.#candidate = false;
              i++;
              from = i;
              this.#state = "listTarget";
            } else {
              this.#releaseHeld(out);
              i++;
              this.#state = "requestLine";
            }
          } else if (b === CR || b === LF) {
            this.#releaseHeld(out);
            this.#state = "passthrough";
            break;
          } else if (this.#candidate && this.#held < LIST_BYTES.length && b === LIST_BYTES[this.#held]) {
            // Still possibly `LIST`: forward what comes before and hold this byte back.
            if (i > from) out.push(chunk.subarray(from, i));
            this.#held++;
            i++;
            from = i;
          } else {
            this.#releaseHeld(out);
            i++;
          }
          if (b !== SP && this.#method.length < MAX_KEPT_METHOD) this.#method += String.fromCharCode(b);
          this.#countHead(1, out);
          break;
        }

        case "listTarget": {
          const b = chunk[i]!;
          if (b === SP || b === HT || b === CR || b === LF || b === HASH) {
            // The end of the path and query: `list=true` goes here.
            if (i > from) out.push(chunk.subarray(from, i));
            from = i;
            out.push(
              !this.#sawQuery
                ? QUERY_FIRST
                : this.#lastTargetByte === QUESTION || this.#lastTargetByte === AMPERSAND
                  ? QUERY_BARE
                  : QUERY_NEXT,
            );
            this.#state = "listLineRest";
          } else {
            if (b === QUESTION) this.#sawQuery = true;
            this.#lastTargetByte = b;
            i++;
            this.#countHead(1, out);
          }
          break;
        }

        case "listLineRest":
        case "requestLine": {
          const lf = chunk.indexOf(LF, i);
          const end = lf === -1 ? n : lf + 1;
          const within = this.#countHead(end - i, out);
          i = end;
          if (lf !== -1 && within) {
            if (this.#state === "listLineRest") {
              out.push(chunk.subarray(from, end));
              from = end;
              out.push(HEADER_LINE);
            }
            this.#line = "";
            this.#state = "headers";
          }
          break;
        }

        case "headers":
        case "trailers":
        case "chunkSize": {
          const lf = chunk.indexOf(LF, i);
          const end = lf === -1 ? n : lf;
          this.#line += chunk.toString("latin1", i, end);
          const within = this.#countHead(end - i + (lf === -1 ? 0 : 1), out);
          i = lf === -1 ? n : lf + 1;
          if (lf !== -1 && within) {
            const line = this.#line.endsWith("\r") ? this.#line.slice(0, -1) : this.#line;
            this.#line = "";
            if (this.#state === "headers") this.#headerLine(line);
            else if (this.#state === "trailers") this.#trailerLine(line);
            else this.#chunkSizeLine(line);
          }
          break;
        }

        case "body":
        case "chunkData": {
          const take = Math.min(this.#remaining, n - i);
          i += take;
          this.#remaining -= take;
          if (this.#remaining === 0) {
            if (this.#state === "body") {
              this.#state = "start";
            } else {
              this.#sawChunkCr = false;
              this.#state = "chunkDataEnd";
            }
          }
          break;
        }

        case "chunkDataEnd": {
          const b = chunk[i]!;
          if (b === CR && !this.#sawChunkCr) {
            this.#sawChunkCr = true;
            i++;
          } else if (b === LF) {
            i++;
            this.#headBytes = 0;
            this.#line = "";
            this.#state = "chunkSize";
          } else {
            this.#state = "passthrough";
          }
          break;
        }
      }
    }
    if (from < n) out.push(from === 0 ? chunk : chunk.subarray(from));
    return out;
  }

  /** At the end of the stream: the bytes still held back, if any. */
  end(): Buffer | undefined {
    const held = this.#held;
    this.#held = 0;
    this.#candidate = false;
    return held > 0 ? LIST_BYTES.subarray(0, held) : undefined;
  }

  #beginRequest(): void {
    this.#state = "method";
    this.#method = "";
    this.#candidate = true;
    this.#held = 0;
    this.#headBytes = 0;
    this.#line = "";
    this.#framing = [];
    this.#lastFraming = undefined;
    this.#remaining = 0;
    this.#sawQuery = false;
    this.#lastTargetByte = 0;
  }

  /** Forwards the held-back bytes of `LIST`: the method turned out to be something else. */
  #releaseHeld(out: Buffer[]): void {
    if (this.#held > 0) out.push(LIST_BYTES.subarray(0, this.#held));
    this.#held = 0;
    this.#candidate = false;
  }

  /** Counts head bytes; false (and pass-through from now on) past {@link MAX_HEAD_BYTES}. */
  #countHead(bytes: number, out: Buffer[]): boolean {
    this.#headBytes += bytes;
    if (this.#headBytes <= MAX_HEAD_BYTES) return true;
    this.#giveUp(out);
    return false;
  }

  #giveUp(out: Buffer[]): void {
    this.#releaseHeld(out);
    this.#line = "";
    this.#state = "passthrough";
  }

  #headerLine(line: string): void {
    if (line === "") {
      this.#endOfHead();
      return;
    }
    const first = line.charCodeAt(0);
    if (first === SP || first === HT) {
      // obs-fold: a continuation of the previous header's value.
      if (this.#lastFraming) this.#lastFraming.value += ` ${trimOws(line)}`;
      return;
    }
    const colon = line.indexOf(":");
    if (colon <= 0) {
      this.#state = "passthrough";
      return;
    }
    const name = line.slice(0, colon).toLowerCase();
    if (name === "content-length" || name === "transfer-encoding" || name === "upgrade") {
      const header: FramingHeader = { name, value: trimOws(line.slice(colon + 1)) };
      this.#framing.push(header);
      this.#lastFraming = header;
    } else {
      this.#lastFraming = undefined;
    }
  }

  #endOfHead(): void {
    const lengths: string[] = [];
    const encodings: string[] = [];
    let upgrade = false;
    for (const { name, value } of this.#framing) {
      if (name === "content-length") lengths.push(trimOws(value));
      else if (name === "transfer-encoding") encodings.push(value);
      else upgrade = true;
    }
    this.#framing = [];
    this.#lastFraming = undefined;
    if (upgrade || this.#method === "CONNECT") {
      this.#state = "passthrough";
    } else if (encodings.length > 0) {
      const codings = encodings
        .join(",")
        .split(",")
        .map((coding) => trimOws(coding).toLowerCase())
        .filter((coding) => coding !== "");
      if (lengths.length === 0 && codings.at(-1) === "chunked") {
        this.#headBytes = 0;
        this.#state = "chunkSize";
      } else {
        // Both framings, or a final coding other than chunked: llhttp rejects the request.
        this.#state = "passthrough";
      }
    } else if (lengths.length > 0) {
      const value = lengths[0]!;
      if (lengths.length > 1 || !CONTENT_LENGTH.test(value)) {
        this.#state = "passthrough";
      } else {
        this.#remaining = Number(value);
        this.#state = this.#remaining > 0 ? "body" : "start";
      }
    } else {
      this.#state = "start";
    }
  }

  #chunkSizeLine(line: string): void {
    const match = CHUNK_SIZE.exec(line);
    if (!match) {
      this.#state = "passthrough";
      return;
    }
    const size = Number.parseInt(match[1]!, 16);
    this.#headBytes = 0;
    if (size === 0) {
      this.#state = "trailers";
    } else {
      this.#remaining = size;
      this.#state = "chunkData";
    }
  }

  #trailerLine(line: string): void {
    if (line === "") this.#state = "start";
  }
}

function trimOws(value: string): string {
  return value.replace(/^[ \t]+|[ \t]+$/g, "");
}

function destroyedError(): Error {
  return Object.assign(new Error("The socket closed before the write completed"), {
    code: "ERR_STREAM_DESTROYED",
  });
}

/**
 * The connection handed to Node's HTTP server in place of the socket: reads are the socket's
 * bytes with `LIST` requests rewritten, writes go to the socket unchanged, and the socket's
 * addresses, timeouts and options are delegated so that the HTTP server and Fastify see what
 * they would see on the socket itself.
 */
export class ListMethodFilterStream extends Duplex {
  readonly #socket: net.Socket;
  readonly #rewriter = new ListRequestRewriter();
  #pausedSocket = false;
  #pendingWrite: ((error?: Error | null) => void) | undefined;

  constructor(socket: net.Socket | tls.TLSSocket) {
    super({
      // Like the sockets of Node's own HTTP server: the server decides when to end its side.
      allowHalfOpen: true,
      readableHighWaterMark: socket.readableHighWaterMark,
      writableHighWaterMark: socket.writableHighWaterMark,
    });
    this.#socket = socket;
    socket.on("data", this.#onData);
    socket.on("end", this.#onEnd);
    socket.on("error", this.#onError);
    socket.on("close", this.#onClose);
    socket.on("timeout", this.#onTimeout);
    if (socket.destroyed) process.nextTick(() => this.destroy());
  }

  /** The underlying socket (for TLS details not delegated here). */
  get rawSocket(): net.Socket | tls.TLSSocket {
    return this.#socket;
  }

  // --- stream plumbing ---

  #onData = (chunk: Buffer | string): void => {
    if (this.destroyed) return;
    const buffer = typeof chunk === "string" ? Buffer.from(chunk, "latin1") : chunk;
    let ok = true;
    for (const piece of this.#rewriter.process(buffer)) {
      if (piece.length > 0 && !this.push(piece)) ok = false;
    }
    if (!ok && !this.#pausedSocket) {
      this.#pausedSocket = true;
      this.#socket.pause();
    }
  };

  #onEnd = (): void => {
    if (this.destroyed) return;
    const held = this.#rewriter.end();
    if (held) this.push(held);
    this.push(null);
  };

  #onError = (error: Error): void => {
    if (this.destroyed) return;
    // Propagate the error only to someone who listens: an unhandled 'error' would crash.
    this.destroy(this.listenerCount("error") > 0 ? error : undefined);
  };

  #onClose = (): void => {
    this.#releasePendingWrite();
    if (!this.destroyed) this.destroy();
  };

  #onTimeout = (): void => {
    this.emit("timeout");
  };

  #onDrain = (): void => {
    const callback = this.#pendingWrite;
    this.#pendingWrite = undefined;
    callback?.();
  };

  #releasePendingWrite(): void {
    const callback = this.#pendingWrite;
    if (!callback) return;
    this.#pendingWrite = undefined;
    this.#socket.off("drain", this.#onDrain);
    callback(destroyedError());
  }

  #afterWrite(ok: boolean, callback: (error?: Error | null) => void): void {
    if (ok) {
      callback();
    } else if (this.#socket.destroyed) {
      callback(destroyedError());
    } else {
      this.#pendingWrite = callback;
      this.#socket.once("drain", this.#onDrain);
    }
  }

  override _read(): void {
    if (this.#pausedSocket) {
      this.#pausedSocket = false;
      this.#socket.resume();
    }
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#afterWrite(this.#socket.write(chunk, encoding), callback);
  }

  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: (error?: Error | null) => void,
  ): void {
    const socket = this.#socket;
    socket.cork();
    let ok = true;
    for (const { chunk, encoding } of chunks) ok = socket.write(chunk, encoding) && ok;
    socket.uncork();
    this.#afterWrite(ok && !socket.writableNeedDrain, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableFinished) {
      callback();
      return;
    }
    // Finish only once the socket has flushed, so that a destroy after 'finish'
    // (`destroySoon`) does not cut the response short.
    const done = (): void => {
      socket.off("finish", done);
      socket.off("close", done);
      callback();
    };
    socket.once("finish", done);
    socket.once("close", done);
    socket.end();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy();
    this.#releasePendingWrite();
    if (this.#pausedSocket) {
      this.#pausedSocket = false;
    }
    callback(error);
  }

  // --- what Node's HTTP server and Fastify use on a socket ---

  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  get remoteFamily(): string | undefined {
    return this.#socket.remoteFamily;
  }

  get localAddress(): string | undefined {
    return this.#socket.localAddress;
  }

  get localPort(): number | undefined {
    return this.#socket.localPort;
  }

  get localFamily(): string | undefined {
    return this.#socket.localFamily;
  }

  get bytesRead(): number {
    return this.#socket.bytesRead;
  }

  get bytesWritten(): number {
    return this.#socket.bytesWritten;
  }

  /** The socket's idle timeout in milliseconds, as set by {@link setTimeout}. */
  get timeout(): number | undefined {
    return this.#socket.timeout;
  }

  /** True on a TLS connection (what Node and Fastify test to tell https from http). */
  get encrypted(): boolean {
    return (this.#socket as Partial<tls.TLSSocket>).encrypted === true;
  }

  /** TLS: whether the peer certificate was verified (undefined on a plain connection). */
  get authorized(): boolean | undefined {
    return (this.#socket as Partial<tls.TLSSocket>).authorized;
  }

  /** TLS: why the peer certificate was not verified (undefined on a plain connection). */
  get authorizationError(): Error | undefined {
    return (this.#socket as Partial<tls.TLSSocket>).authorizationError;
  }

  /** TLS: the negotiated ALPN protocol (undefined on a plain connection). */
  get alpnProtocol(): string | false | null | undefined {
    return (this.#socket as Partial<tls.TLSSocket>).alpnProtocol;
  }

  /** TLS: the peer certificate (null on a plain connection). */
  getPeerCertificate(detailed?: boolean): tls.PeerCertificate | tls.DetailedPeerCertificate | null {
    const socket = this.#socket as Partial<tls.TLSSocket>;
    return typeof socket.getPeerCertificate === "function" ? socket.getPeerCertificate(detailed) : null;
  }

  /** TLS: the negotiated protocol version (null on a plain connection). */
  getProtocol(): string | null {
    const socket = this.#socket as Partial<tls.TLSSocket>;
    return typeof socket.getProtocol === "function" ? socket.getProtocol() : null;
  }

  /** TLS: the negotiated cipher (null on a plain connection). */
  getCipher(): tls.CipherNameAndProtocol | null {
    const socket = this.#socket as Partial<tls.TLSSocket>;
    return typeof socket.getCipher === "function" ? socket.getCipher() : null;
  }

  address(): ReturnType<net.Socket["address"]> {
    return this.#socket.address();
  }

  /**
   * Sets the socket's idle timeout; the socket's 'timeout' event is re-emitted on this stream
   * (Node's HTTP server uses it for `keepAliveTimeout` and `server.timeout`).
   */
  setTimeout(msecs: number, callback?: () => void): this {
    this.#socket.setTimeout(msecs);
    if (callback) {
      if (msecs === 0) this.removeListener("timeout", callback);
      else this.once("timeout", callback);
    }
    return this;
  }

  setNoDelay(noDelay?: boolean): this {
    this.#socket.setNoDelay(noDelay);
    return this;
  }

  setKeepAlive(enable?: boolean, initialDelay?: number): this {
    this.#socket.setKeepAlive(enable, initialDelay);
    return this;
  }

  ref(): this {
    this.#socket.ref();
    return this;
  }

  unref(): this {
    this.#socket.unref();
    return this;
  }

  /** Ends the writable side, then destroys once everything is flushed (like `net.Socket`). */
  destroySoon(): void {
    if (this.writable) this.end();
    if (this.writableFinished) this.destroy();
    else this.once("finish", () => this.destroy());
  }
}

/**
 * Wraps an accepted connection so that Node's HTTP server can serve Vault's `LIST` requests.
 *
 * Returns a Duplex to hand to the HTTP server with `httpServer.emit("connection", duplex)`.
 * Its readable side is the socket's bytes, except that each request line
 * `LIST <target> HTTP/1.x` reads `GET <target'> HTTP/1.x` (with `list=true` added to the
 * query of `target`) followed by the header line `X-Egide-Original-Method: LIST`; every other
 * request passes byte for byte. Writes go to the socket; `end()` and `destroy()` propagate
 * both ways; socket errors become errors of the Duplex (or a plain destroy when nobody
 * listens, never an unhandled 'error'); socket 'timeout' events are re-emitted. The Duplex
 * delegates `remoteAddress`, `remotePort`, `localAddress`, `encrypted`, `setTimeout`,
 * `setNoDelay`, `setKeepAlive`, `ref`, `unref`, `address()` and `destroySoon` to the socket.
 *
 * Create the listening server with `allowHalfOpen: true` (as Node's HTTP server does for its
 * own sockets) and `noDelay: true` (Node's HTTP server default); the HTTP server's
 * `headersTimeout`/`requestTimeout` checks only run once that server has emitted 'listening'.
 *
 * @example
 * const httpServer = http.createServer(handler);
 * net.createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
 *   httpServer.emit("connection", listMethodFilter(socket)),
 * ).listen(8200);
 */
export function listMethodFilter(socket: net.Socket | tls.TLSSocket): ListMethodFilterStream {
  return new ListMethodFilterStream(socket);
}
