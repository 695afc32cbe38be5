import { startPgBouncer, type PgBouncer } from "@egide/test-postgres";
import { afterAll, beforeAll } from "vitest";
import { PostgresBackend, type PostgresOptions } from "../../src/index.js";
import { createTestDatabase, type TestDatabase } from "./postgres-server.js";

/** What {@link usePgBouncer} gives a describe block. */
export interface PgBouncerFixture {
  /** Opens a backend whose queries go through PgBouncer (closed after the block). */
  open(options?: Partial<PostgresOptions>): Promise<PostgresBackend>;
  /** The database created for the block. */
  database(): TestDatabase;
  /** The block's PgBouncer. */
  bouncer(): PgBouncer;
}

/**
 * A database of the block's own behind a PgBouncer of its own in transaction mode (the
 * production layout), with backends opened through it; registers the block's `beforeAll` and
 * `afterAll`, which close every backend, stop PgBouncer and drop the database.
 */
export function usePgBouncer(label: string, options: { defaultPoolSize: number; poolMax: number }): PgBouncerFixture {
  let database: TestDatabase | undefined;
  let bouncer: PgBouncer | undefined;
  const opened: PostgresBackend[] = [];

  beforeAll(async () => {
    database = await createTestDatabase(label);
    bouncer = await startPgBouncer({ defaultPoolSize: options.defaultPoolSize });
  }, 30_000);

  afterAll(async () => {
    try {
      for (const backend of opened) await backend.close();
    } finally {
      await bouncer?.stop();
      await database?.drop();
    }
  });

  return {
    async open(overrides = {}) {
      if (!database || !bouncer) throw new Error("usePgBouncer: open() before beforeAll ran");
      const backend = await PostgresBackend.open({
        ...database.connection,
        host: bouncer.host,
        port: bouncer.port,
        prepareThreshold: 0,
        poolMin: 0,
        poolMax: options.poolMax,
        ...overrides,
      });
      opened.push(backend);
      return backend;
    },
    database() {
      if (!database) throw new Error("usePgBouncer: database() before beforeAll ran");
      return database;
    },
    bouncer() {
      if (!bouncer) throw new Error("usePgBouncer: bouncer() before beforeAll ran");
      return bouncer;
    },
  };
}
