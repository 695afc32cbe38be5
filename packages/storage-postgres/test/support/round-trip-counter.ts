import { createConnection, createServer, type Server, type Socket } from "node:net";
import { postgresServer } from "./postgres-server.js";

/**
 * A loopback TCP proxy in front of the test PostgreSQL that reads the frontend protocol of every
 * connection and counts round trips: each simple `Query` ('Q') and each `Sync` ('S', which ends
 * an extended-protocol exchange: Parse/Bind/Describe/Execute go out together before it) is one
 * wait for the server. Clients must connect without TLS (`sslMode: "disable"`), so the bytes
 * can be read.
 */
export class RoundTripCounter {
  #server: Server | undefined;
  readonly #sockets = new Set<Socket>();
  /** Round trips per message type, since the last {@link reset}. */
  #queries = 0;
  #syncs = 0;
  /** The text of each simple query, since the last {@link reset}. */
  readonly simpleQueries: string[] = [];

  /** Round trips since the last {@link reset}. */
  get roundTrips(): number {
    return this.#queries + this.#syncs;
  }

  /** Starts counting from zero. */
  reset(): void {
    this.#queries = 0;
    this.#syncs = 0;
    this.simpleQueries.length = 0;
  }

  /** Listens on an ephemeral loopback port. */
  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((client) => this.#accept(client));
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", resolve);
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("RoundTripCounter is not listening");
    return { host: "127.0.0.1", port: address.port };
  }

  /** Closes every connection and stops listening. */
  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    const server = this.#server;
    this.#server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #accept(client: Socket): void {
    const upstream = createConnection({ host: postgresServer.host, port: postgresServer.port });
    for (const socket of [client, upstream]) {
      this.#sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        this.#sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on("data", (chunk: Buffer) => client.write(chunk));
    let buffered = Buffer.alloc(0);
    let started = false;
    client.on("data", (chunk: Buffer) => {
      upstream.write(chunk);
      buffered = Buffer.concat([buffered, chunk]);
      for (;;) {
        if (!started) {
          // The startup message has no type byte: Int32 length, then the rest.
          if (buffered.length < 4) return;
          const length = buffered.readInt32BE(0);
          if (buffered.length < length) return;
          buffered = buffered.subarray(length);
          started = true;
          continue;
        }
        if (buffered.length < 5) return;
        const type = String.fromCharCode(buffered[0]!);
        const length = buffered.readInt32BE(1);
        if (buffered.length < 1 + length) return;
        if (type === "Q") {
          this.#queries += 1;
          this.simpleQueries.push(
            buffered
              .subarray(5, 1 + length)
              .toString("utf8")
              .replace(/\0$/, ""),
          );
        }
        if (type === "S") this.#syncs += 1;
        buffered = buffered.subarray(1 + length);
      }
    });
  }
}
