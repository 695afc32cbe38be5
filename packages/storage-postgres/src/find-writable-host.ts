import { StorageError, StorageErrorCode } from "@egide/storage-core";
import { destroySocket, withDeadline } from "./client-lease.js";
import { connectClient } from "./postgres-connection.js";
import { formatHost, type ActiveHost, type PostgresHost } from "./postgres-hosts.js";
import { withHiddenPassword, type ResolvedPostgresOptions } from "./postgres-options.js";
import type { PgSsl } from "./postgres-ssl.js";
import { POSTGRES_TYPE } from "./postgres-type.js";

/** A host found by {@link findWritableHost}, with the TLS choice that worked on it. */
export interface FoundHost extends ActiveHost {
  ssl: PgSsl;
}

/**
 * `options` aimed at one host (TLS verification and messages use its name). Spreading drops the
 * hidden password: it is passed on explicitly.
 */
export function optionsForHost(options: ResolvedPostgresOptions, host: PostgresHost): ResolvedPostgresOptions {
  return withHiddenPassword({ ...options, host: host.host, port: host.port }, options.password);
}

/**
 * Whether a connected session may write: libpq's `target_session_attrs=read-write` test. A hot
 * standby, a primary with `default_transaction_read_only = on` (fenced) and a server in recovery
 * all answer `on`.
 */
export async function isWritable(client: {
  query(text: string): Promise<{ rows: { transaction_read_only?: string }[] }>;
}): Promise<boolean> {
  const result = await client.query("SHOW transaction_read_only");
  return result.rows[0]?.transaction_read_only === "off";
}

/**
 * libpq's host walk, which node-postgres lacks: tries `options.hosts` in order (the host at
 * `first`, when given, before the others), each with a
 * connection of its own (walking the `ssl_mode` attempts), and returns the first that answers
 * and, under `target_session_attrs = read-write`, accepts writes. Each attempt is bounded by
 * the connection timeout. Fails with `UNAVAILABLE`, saying what each host answered (host names
 * and driver messages: for logs and authenticated callers only).
 */
export async function findWritableHost(options: ResolvedPostgresOptions, first?: number): Promise<FoundHost> {
  const failures: string[] = [];
  const order = [...options.hosts.keys()];
  if (first !== undefined && first > 0 && first < order.length) {
    order.splice(first, 1);
    order.unshift(first);
  }
  for (const index of order) {
    const host = options.hosts[index] as PostgresHost;
    const target = optionsForHost(options, host);
    let connected: Awaited<ReturnType<typeof connectClient>> | undefined;
    try {
      connected = await withDeadline(connectClient(target), options.connectionTimeoutMs + 1000, `connect to ${formatHost(host)}`);
      const writable =
        options.targetSessionAttrs === "any" ||
        (await withDeadline(isWritable(connected.client), options.connectionTimeoutMs, "SHOW transaction_read_only"));
      await withDeadline(
        connected.client.end().catch(() => undefined),
        1000,
        "close",
      ).catch(() => destroySocket(connected!.client));
      if (writable) return { host: host.host, port: host.port, index, hostCount: options.hosts.length, ssl: connected.ssl };
      failures.push(`${formatHost(host)}: read-only (a standby, or transaction_read_only is on)`);
    } catch (error) {
      if (connected) destroySocket(connected.client);
      failures.push(`${formatHost(host)}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  throw new StorageError(
    StorageErrorCode.UNAVAILABLE,
    `no ${options.targetSessionAttrs === "any" ? "reachable" : "writable"} PostgreSQL host: ${failures.join("; ")}`,
    { backend: POSTGRES_TYPE },
  );
}
