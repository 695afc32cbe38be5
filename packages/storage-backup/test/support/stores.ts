import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SealManager, barrier } from "@egide/crypto-envelope";
import type { StorageBackend } from "@egide/storage-core";
import { PostgresBackend } from "@egide/storage-postgres";
import type { PostgresOptions } from "@egide/storage-postgres";
import { SqliteBackend } from "@egide/storage-sqlite";
import { createTestDatabase, randomSuffix } from "@egide/test-postgres";
import type { TestDatabase } from "@egide/test-postgres";

/** The two backend types these tests run against. */
export type BackendType = "sqlite" | "postgresql";
export const BACKEND_TYPES: readonly BackendType[] = ["sqlite", "postgresql"];

/**
 * The real stores of one test file: SQLite files in a temporary folder, and PostgreSQL schemas
 * in one database created for the file. {@link cleanup} closes every backend, drops the
 * database and removes the folder. An unreachable PostgreSQL server fails `createStores`
 * (and so every test of the file): these tests are never skipped.
 */
export class Stores {
  readonly dir: string;
  readonly database: TestDatabase | undefined;
  readonly #open: StorageBackend[] = [];
  #counter = 0;

  private constructor(dir: string, database: TestDatabase | undefined) {
    this.dir = dir;
    this.database = database;
  }

  static async create(label: string, options: { postgres?: boolean } = {}): Promise<Stores> {
    const dir = mkdtempSync(join(tmpdir(), `egide-backup-${label}-`));
    try {
      const database = options.postgres === false ? undefined : await createTestDatabase(`backup_${label}`);
      return new Stores(dir, database);
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
  }

  /** A new file path in the folder. */
  path(name: string): string {
    return join(this.dir, `${++this.#counter}-${name}`);
  }

  /** A new SQLite database file (WAL, the default) or the one at `path`. */
  sqlite(path = this.path("store.db")): SqliteBackend {
    return this.track(SqliteBackend.open({ path }));
  }

  /** A new PostgreSQL backend in a schema of its own. */
  async postgres(options: Partial<PostgresOptions> = {}): Promise<PostgresBackend> {
    if (!this.database) throw new Error("this file's stores were created without PostgreSQL");
    const schema = `s_${++this.#counter}_${randomSuffix()}`;
    return this.track(await PostgresBackend.open({ ...this.database.connection, schema, poolMin: 0, poolMax: 4, ...options }));
  }

  /** A new, empty backend of `type`. */
  async open(type: BackendType): Promise<StorageBackend> {
    return type === "sqlite" ? this.sqlite() : this.postgres();
  }

  track<T extends StorageBackend>(backend: T): T {
    this.#open.push(backend);
    return backend;
  }

  async cleanup(): Promise<void> {
    for (const backend of this.#open.splice(0)) await backend.close().catch(() => undefined);
    try {
      await this.database?.drop();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/** A raw backend holding an initialised (1 of 1), unsealed installation. */
export interface Installation {
  raw: StorageBackend;
  seal: SealManager;
  barrier: StorageBackend;
  share: Buffer;
}

/** Initialises `raw` 1 of 1 and unseals it. */
export async function install(raw: StorageBackend): Promise<Installation> {
  const seal = await SealManager.open(raw);
  const { shares } = await seal.initialize({ shares: 1, threshold: 1 });
  const share = Buffer.from(shares[0] as Buffer);
  await seal.unseal(share);
  return { raw, seal, barrier: barrier(raw, seal), share };
}

/** A NEW seal manager over `raw`, unsealed with `share`, and the barrier over it. */
export async function reopen(raw: StorageBackend, share: Buffer): Promise<{ seal: SealManager; barrier: StorageBackend }> {
  const seal = await SealManager.open(raw);
  await seal.unseal(share);
  return { seal, barrier: barrier(raw, seal) };
}
