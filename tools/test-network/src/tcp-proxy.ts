import { createConnection, createServer, type Server, type Socket } from "node:net";

/**
 * What the proxy does with traffic:
 * - `pass`: forwards bytes both ways, like a healthy network;
 * - `blackhole`: accepts connections but forwards nothing in either direction and keeps every
 *   socket open, so clients hang as they would behind a dead route or a frozen server;
 * - `cut`: every connection is reset and new ones are reset as soon as they arrive, as when the
 *   server is down.
 */
export type TcpProxyMode = "pass" | "blackhole" | "cut";

/** Where the proxy forwards to: a loopback service (host 127.0.0.1 unless told otherwise). */
export interface TcpProxyOptions {
  targetHost?: string;
  targetPort: number;
}

/** One client connection and, when it was accepted in `pass` mode, its upstream connection. */
interface ProxiedConnection {
  client: Socket;
  upstream: Socket | undefined;
  /**
   * Set when the proxy swallowed bytes of this connection. Its byte stream is then broken, so it
   * must never be resumed: forwarding again would hand the server or the client half a message.
   */
  lost: boolean;
}

/**
 * A loopback TCP proxy whose behaviour the test switches at any moment, to simulate a service
 * (PostgreSQL, an etcd member) that stops answering or drops its connections.
 *
 * Coming back to `pass` resumes only connections that lost nothing while black-holed (a real
 * network would have retransmitted their bytes); connections that lost bytes, or that were
 * accepted during the black hole and so never reached the server, are reset then, the way TCP
 * eventually gives up on a dead peer.
 */
export class TcpProxy {
  readonly #targetHost: string;
  readonly #targetPort: number;
  readonly #connections = new Set<ProxiedConnection>();
  #server: Server | undefined;
  #mode: TcpProxyMode = "pass";
  #accepted = 0;

  constructor(options: TcpProxyOptions) {
    this.#targetHost = options.targetHost ?? "127.0.0.1";
    this.#targetPort = options.targetPort;
  }

  /** The current mode. */
  get mode(): TcpProxyMode {
    return this.#mode;
  }

  /** How many client connections the proxy has accepted since it started, in any mode. */
  get acceptedConnections(): number {
    return this.#accepted;
  }

  /** How many client connections are open right now. */
  get openConnections(): number {
    return this.#connections.size;
  }

  /** Listens on an ephemeral loopback port, in `pass` mode. */
  async start(): Promise<{ port: number }> {
    if (this.#server) throw new Error("TcpProxy already started");
    const server = createServer((client) => this.#accept(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject);
        resolve();
      });
    });
    return { port: this.port };
  }

  /** The port the proxy listens on. */
  get port(): number {
    const address = this.#server?.address();
    if (!address || typeof address === "string") throw new Error("TcpProxy is not listening");
    return address.port;
  }

  /** Forwards traffic again; see the class comment for which connections survive. */
  pass(): void {
    this.#mode = "pass";
    for (const connection of this.#connections) {
      if (connection.lost || !connection.upstream) {
        this.#reset(connection);
        continue;
      }
      connection.client.resume();
      connection.upstream.resume();
    }
  }

  /** Stops forwarding in both directions and holds every socket open. */
  blackhole(): void {
    this.#mode = "blackhole";
  }

  /** Resets every connection, and every new one until {@link pass} is called. */
  cut(): void {
    this.#mode = "cut";
    for (const connection of this.#connections) this.#reset(connection);
  }

  /** Resets every connection and stops listening. */
  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const connection of this.#connections) this.#reset(connection);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    this.#accepted += 1;
    // A reset peer makes sockets emit 'error'; the proxy only needs to tear the pair down, and an
    // unhandled 'error' would crash the test process, which is exactly what fault tests watch for.
    client.on("error", () => undefined);
    client.setNoDelay(true);
    if (this.#mode === "cut") {
      client.resetAndDestroy();
      return;
    }
    const connection: ProxiedConnection = { client, upstream: undefined, lost: false };
    this.#connections.add(connection);
    client.on("close", () => this.#reset(connection));
    if (this.#mode === "blackhole") {
      // Never connected upstream: whatever the client sends is lost.
      client.on("data", () => {
        connection.lost = true;
      });
      return;
    }

    const upstream = createConnection({ host: this.#targetHost, port: this.#targetPort });
    connection.upstream = upstream;
    upstream.on("error", () => undefined);
    upstream.setNoDelay(true);
    upstream.on("close", () => this.#reset(connection));
    this.#pipe(connection, client, upstream);
    this.#pipe(connection, upstream, client);
  }

  /** Forwards `from` to `to` in `pass` mode and swallows its bytes otherwise. */
  #pipe(connection: ProxiedConnection, from: Socket, to: Socket): void {
    from.on("data", (chunk: Buffer) => {
      if (this.#mode !== "pass" || connection.lost) {
        connection.lost = true;
        return;
      }
      // Backpressure, so that a slow reader cannot make the proxy buffer without bound.
      if (!to.write(chunk)) {
        from.pause();
        to.once("drain", () => {
          if (this.#mode === "pass") from.resume();
        });
      }
    });
  }

  #reset(connection: ProxiedConnection): void {
    if (!this.#connections.delete(connection)) return;
    if (!connection.client.destroyed) connection.client.resetAndDestroy();
    if (connection.upstream && !connection.upstream.destroyed) connection.upstream.resetAndDestroy();
  }
}
