import { quoteIdentifier, randomSuffix, withClient } from "@egide/test-postgres";
import type { PostgresConnection } from "@egide/test-postgres";
import { PostgresBackend } from "../../src/index.js";
import type { PostgresOptions } from "../../src/index.js";

// The machine's PostgreSQL and throwaway databases come from the workspace's shared test
// helper; this file adds what only this package's tests need: a backend per fresh schema.
export { createTestDatabase, postgresServer, quoteIdentifier, withClient as withAdminClient } from "@egide/test-postgres";
export type { PostgresConnection, TestDatabase } from "@egide/test-postgres";

/** Options of {@link freshSchemaFactory}. */
export interface FreshSchemaOptions {
  /**
   * Where schemas are dropped, when the backend connects through a proxy (PgBouncer):
   * administrative statements go straight to PostgreSQL. Default: `connection`.
   */
  admin?: PostgresConnection;
  /** Further backend options (e.g. `prepareThreshold: 0`). */
  backend?: Partial<PostgresOptions>;
}

/** Hands out backends, each in a schema of its own inside one test database. */
export interface FreshSchemaFactory {
  /** Opens a backend on a new, empty schema `s_<counter>_<random>` (the backend creates it). */
  create(): Promise<PostgresBackend>;
  /** Closes the backend (it may already be closed) and drops its schema. */
  destroy(backend: PostgresBackend): Promise<void>;
  /** The schema a backend from {@link create} uses. */
  schemaOf(backend: PostgresBackend): string | undefined;
  /** Destroys every backend still open (for `afterAll`, after a failed test). */
  destroyAll(): Promise<void>;
}

/**
 * A factory of fresh, empty backends for the conformance suite and other per-test needs. Pools
 * stay small (0 to 4 connections) so parallel test files do not exhaust `max_connections`.
 */
export function freshSchemaFactory(connection: PostgresConnection, options: FreshSchemaOptions = {}): FreshSchemaFactory {
  const admin = options.admin ?? connection;
  const schemas = new Map<PostgresBackend, string>();
  let counter = 0;

  const destroy = async (backend: PostgresBackend): Promise<void> => {
    const schema = schemas.get(backend);
    schemas.delete(backend);
    await backend.close();
    if (schema === undefined) return;
    await withClient(admin.database, (client) => client.query(`DROP SCHEMA IF EXISTS ${quoteIdentifier(schema)} CASCADE`));
  };

  return {
    async create() {
      const schema = `s_${++counter}_${randomSuffix()}`;
      const backend = await PostgresBackend.open({ ...connection, schema, poolMin: 0, poolMax: 4, ...options.backend });
      schemas.set(backend, schema);
      return backend;
    },
    destroy,
    schemaOf: (backend) => schemas.get(backend),
    async destroyAll() {
      for (const backend of [...schemas.keys()]) await destroy(backend);
    },
  };
}
