import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { etcdBinary } from "./etcd-binary.js";
import { type HttpTls, httpJson } from "./http-json.js";

/** Server TLS of a member: its certificate and key, and the CA clients are checked against. */
export interface EtcdServerTls {
  certFile: string;
  keyFile: string;
  /** The CA that signed `certFile`: the helper's own requests trust it. */
  caFile: string;
  /**
   * `--client-cert-auth` and `--trusted-ca-file=caFile`: clients must present a certificate
   * signed by `caFile` (etcd 3.4 asks for one whenever a trusted CA file is given).
   */
  clientCertAuth?: boolean;
  /** A client certificate and key for the helper's own requests when `clientCertAuth` is set. */
  clientCertFile?: string;
  clientKeyFile?: string;
}

/** What one member is started with (see {@link EtcdMember}). */
export interface EtcdMemberSpec {
  name: string;
  clientPort: number;
  peerPort: number;
  dataDir: string;
  /** `name=http://127.0.0.1:peer,…` for every member of the cluster. */
  initialCluster: string;
  clusterToken: string;
  tls?: EtcdServerTls;
  /** `--quota-backend-bytes` (default 512 MiB). */
  quotaBackendBytes?: number;
  /** Further flags, e.g. `["--max-txn-ops", "1024"]`. */
  extraArgs?: readonly string[];
}

/** What `/v3/maintenance/status` says about a member. */
export interface EtcdMemberStatus {
  memberId: string;
  leaderId: string;
  version: string;
}

const LOG_TAIL_BYTES = 16 * 1024;

/**
 * One etcd server process on loopback ports, with its own data directory: started, killed
 * (SIGKILL by default, as a crash) and restarted on the same data by the test.
 */
export class EtcdMember {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly #spec: EtcdMemberSpec;
  readonly #tls: HttpTls | undefined;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();
  #log = "";

  constructor(spec: EtcdMemberSpec) {
    this.#spec = spec;
    this.name = spec.name;
    this.clientPort = spec.clientPort;
    this.peerPort = spec.peerPort;
    this.dataDir = spec.dataDir;
    this.#tls = spec.tls
      ? {
          ca: readFileSync(spec.tls.caFile),
          ...(spec.tls.clientCertFile ? { cert: readFileSync(spec.tls.clientCertFile) } : {}),
          ...(spec.tls.clientKeyFile ? { key: readFileSync(spec.tls.clientKeyFile) } : {}),
        }
      : undefined;
  }

  /** `http(s)://127.0.0.1:<client port>`: the member's client endpoint. */
  get clientUrl(): string {
    return `${this.#spec.tls ? "https" : "http"}://127.0.0.1:${this.clientPort}`;
  }

  /** `http://127.0.0.1:<peer port>`. */
  get peerUrl(): string {
    return `http://127.0.0.1:${this.peerPort}`;
  }

  /** Whether the process is running. */
  get running(): boolean {
    return this.#child !== undefined;
  }

  /** The process id while running. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** The last lines the member wrote, for a failure message. */
  get log(): string {
    return this.#log;
  }

  /** The end of the log, short enough for an error message. */
  #logTail(): string {
    return this.#log.slice(-2048);
  }

  /** Starts the process (on its existing data directory, if any). Does not wait for readiness. */
  start(): void {
    if (this.#child) throw new Error(`etcd member ${this.name} is already running`);
    const spec = this.#spec;
    const tls = spec.tls;
    const args = [
      `--name=${spec.name}`,
      `--data-dir=${spec.dataDir}`,
      `--listen-client-urls=${this.clientUrl}`,
      `--advertise-client-urls=${this.clientUrl}`,
      `--listen-peer-urls=${this.peerUrl}`,
      `--initial-advertise-peer-urls=${this.peerUrl}`,
      `--initial-cluster=${spec.initialCluster}`,
      `--initial-cluster-token=${spec.clusterToken}`,
      "--initial-cluster-state=new",
      // Fast elections keep the fault tests short; fsync stays on, as in production.
      "--heartbeat-interval=50",
      "--election-timeout=500",
      `--quota-backend-bytes=${spec.quotaBackendBytes ?? 512 * 1024 * 1024}`,
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
      ...(tls
        ? [
            `--cert-file=${tls.certFile}`,
            `--key-file=${tls.keyFile}`,
            ...(tls.clientCertAuth ? [`--trusted-ca-file=${tls.caFile}`, "--client-cert-auth=true"] : []),
          ]
        : []),
      ...(spec.extraArgs ?? []),
    ];
    const child = spawn(etcdBinary(), args, { stdio: ["ignore", "ignore", "pipe"] });
    this.#child = child;
    liveChildren.add(child);
    child.stderr?.on("data", (chunk: Buffer) => {
      this.#log = (this.#log + chunk.toString("utf8")).slice(-LOG_TAIL_BYTES);
    });
    this.#exited = new Promise<void>((resolve) => {
      child.once("exit", () => {
        liveChildren.delete(child);
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
      child.once("error", (error) => {
        this.#log += `\nspawn failed: ${error.message}`;
        liveChildren.delete(child);
        if (this.#child === child) this.#child = undefined;
        resolve();
      });
    });
  }

  /** Kills the process (SIGKILL: a crash, no goodbye to the peers) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = "SIGKILL"): Promise<void> {
    const child = this.#child;
    if (!child) return;
    child.kill(signal);
    await this.#exited;
  }

  /** Kills the member if it runs, starts it again on its data, and waits until it is healthy. */
  async restart(timeoutMs = 20_000): Promise<void> {
    await this.kill();
    this.start();
    await this.waitHealthy(timeoutMs);
  }

  /** Whether `/health` answers `{"health":"true"}` (the member has a leader and serves reads). */
  async healthy(): Promise<boolean> {
    try {
      const { status, body } = await httpJson(`${this.clientUrl}/health`, { tls: this.#tls, timeoutMs: 1000 });
      return status === 200 && (body as { health?: string } | undefined)?.health === "true";
    } catch {
      return false;
    }
  }

  /** Waits until {@link healthy}, failing with the member's log after `timeoutMs`. */
  async waitHealthy(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await this.healthy())) {
      if (!this.#child) throw new Error(`etcd member ${this.name} exited while starting:\n${this.#logTail()}`);
      if (Date.now() > deadline) throw new Error(`etcd member ${this.name} was not healthy within ${timeoutMs} ms:\n${this.#logTail()}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** The member's id and the leader it knows of (`leaderId` "0" while there is none). */
  async status(): Promise<EtcdMemberStatus> {
    const { status, body } = await httpJson(`${this.clientUrl}/v3/maintenance/status`, { body: {}, tls: this.#tls });
    const answer = body as { header?: { member_id?: string }; leader?: string; version?: string } | undefined;
    if (status !== 200 || !answer?.header?.member_id) throw new Error(`etcd member ${this.name}: status answered ${status}`);
    return { memberId: answer.header.member_id, leaderId: answer.leader ?? "0", version: answer.version ?? "" };
  }
}

// Members still running when the test process exits are killed with it, so a failed run never
// leaves an etcd behind holding ports and a data directory.
const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of liveChildren) child.kill("SIGKILL");
});
