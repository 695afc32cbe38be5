/** One PostgreSQL server the backend may connect to. */
export interface PostgresHost {
  host: string;
  port: number;
}

/** The host the backend's pool connects to now, for health checks and metrics. */
export interface ActiveHost extends PostgresHost {
  /** Its position in the configured host list, from 0. */
  index: number;
  /** How many hosts are configured (1 without `hosts` or a multi-host `url`). */
  hostCount: number;
}

/**
 * libpq's `target_session_attrs` values Egide supports: `read-write` keeps only a server that
 * accepts writes (`SHOW transaction_read_only` is `off`), `any` takes the first that answers.
 */
export const TARGET_SESSION_ATTRS = ["read-write", "any"] as const;
/** One of {@link TARGET_SESSION_ATTRS}. */
export type TargetSessionAttrs = (typeof TARGET_SESSION_ATTRS)[number];

/**
 * Reads one entry of a host list: `db1`, `db1:5433`, `[::1]:5433` or a bare IPv6 address
 * (`::1`, which then takes `defaultPort`). Returns an error message instead of throwing, so the
 * caller can name the option.
 */
export function parseHostEntry(text: string, defaultPort: number): PostgresHost | string {
  const entry = text.trim();
  if (entry === "") return "must not hold an empty host";
  const bracketed = /^\[([^\]]+)\](?::(.*))?$/.exec(entry);
  let host: string;
  let portText: string | undefined;
  if (bracketed) {
    host = bracketed[1] as string;
    portText = bracketed[2];
  } else if (entry.indexOf(":") !== entry.lastIndexOf(":")) {
    // Two colons or more without brackets: an IPv6 address, without a port.
    host = entry;
  } else {
    const colon = entry.indexOf(":");
    host = colon === -1 ? entry : entry.slice(0, colon);
    portText = colon === -1 ? undefined : entry.slice(colon + 1);
  }
  if (host === "" || /[\s/,@?#]/.test(host)) return `holds an invalid host ${JSON.stringify(text)}`;
  if (portText === undefined || portText === "") return { host, port: defaultPort };
  const port = Number(portText);
  if (!/^[0-9]+$/.test(portText) || port < 1 || port > 65535) return `holds an invalid port in ${JSON.stringify(text)} (1-65535)`;
  return { host, port };
}

/** `host:port`, with IPv6 addresses in brackets: how hosts appear in messages and metrics. */
export function formatHost(host: PostgresHost): string {
  return `${host.host.includes(":") ? `[${host.host}]` : host.host}:${host.port}`;
}
