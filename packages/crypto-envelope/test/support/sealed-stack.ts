import { SqliteBackend } from "@egide/storage-sqlite";
import type { StorageBackend } from "@egide/storage-core";
import { SealManager, barrier } from "../../src/index.js";
import type { SealManagerOptions, ShareScheme } from "../../src/index.js";

/** A raw backend, its seal manager (initialised and unsealed) and the barrier over them. */
export interface SealedStack {
  raw: StorageBackend;
  seal: SealManager;
  barrier: StorageBackend;
  /** The shares `initialize` returned. */
  shares: Buffer[];
}

/**
 * Initialises `raw` with `scheme` (default 1 of 1), unseals it, and wraps it in a barrier.
 * Default raw backend: SQLite in memory.
 */
export async function openSealedStack(
  options: { raw?: StorageBackend; scheme?: ShareScheme; seal?: SealManagerOptions } = {},
): Promise<SealedStack> {
  const raw = options.raw ?? SqliteBackend.open({ path: ":memory:" });
  const seal = await SealManager.open(raw, options.seal);
  const scheme = options.scheme ?? { shares: 1, threshold: 1 };
  const { shares } = await seal.initialize(scheme);
  for (const share of shares.slice(0, scheme.threshold)) await seal.unseal(share);
  return { raw, seal, barrier: barrier(raw, seal), shares };
}
