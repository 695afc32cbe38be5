import { TcpProxy as LoopbackTcpProxy, type TcpProxyOptions as LoopbackTcpProxyOptions } from "@egide/test-network";
import { postgresServer } from "./postgres-server.js";

/** Where a {@link TcpProxy} forwards to: the machine's PostgreSQL unless told otherwise. */
export type TcpProxyOptions = Partial<LoopbackTcpProxyOptions>;

/**
 * `@egide/test-network`'s proxy, aimed by default at the PostgreSQL the tests use
 * (PGHOST/PGPORT, default 127.0.0.1:5432).
 */
export class TcpProxy extends LoopbackTcpProxy {
  constructor(options: TcpProxyOptions = {}) {
    super({ targetHost: options.targetHost ?? postgresServer.host, targetPort: options.targetPort ?? postgresServer.port });
  }
}
