/**
 * Support for the `LIST` HTTP method of Vault clients.
 *
 * The Go `vault` CLI (`vault list`) sends requests whose method is `LIST`. Node's HTTP parser
 * (llhttp) does not know that method and answers 400 before any framework sees the request. So
 * each connection's byte stream goes through {@link listMethodFilter} before it reaches Node's
 * HTTP server: a request line `LIST <target> HTTP/1.x` becomes `GET <target'> HTTP/1.x`, where
 * `target'` carries the query parameter `list=true`, and the header line
 * `X-Egide-Original-Method: LIST <marker>` is inserted right after it (the marker is random per
 * process, `ORIGINAL_METHOD_LIST`). Every other byte passes unchanged.
 *
 * The filter follows request boundaries (Content-Length and chunked bodies) so that keep-alive
 * and pipelined requests work and body bytes are never mistaken for a request line. When the
 * stream is something it does not understand (a malformed Content-Length or chunk size, a head
 * over {@link MAX_HEAD_BYTES}, an Upgrade or CONNECT request), it stops rewriting and passes the
 * rest of the connection through unchanged: Node's parser then answers 400/431 itself, or the
 * upgraded protocol gets its bytes untouched.
 *
 * A client that sends an `X-Egide-Original-Method` header itself gains nothing: only the
 * process's own marker makes a request count as sent with `LIST` (for the audit row's method),
 * and a plain `GET ?list=true` is Vault's own spelling of a list request anyway.
 */
import { Duplex } from "node:stream";
import type * as net from "node:net";
import type * as tls from "node:tls";
/** A request head (request line and header lines) longer than this stops the rewriting. */
import { ListRequestRewriter } from "./list-request-rewriter.js";

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

  override _writev(chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>, callback: (error?: Error | null) => void): void {
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
