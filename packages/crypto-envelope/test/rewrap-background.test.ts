import { SqliteBackend } from "@egide/storage-sqlite";
import { expect, test } from "vitest";
import { openSealedStack } from "./support/sealed-stack.js";

// The background rewrap a server starts after a rotation: one at a time, stopped by seal(),
// resumed by the next call.

const version = (record: Buffer | null) => (record as Buffer).readUInt32BE(2);

test("a background rewrap moves every record, runs once at a time, stops on seal and resumes", async () => {
  const raw = SqliteBackend.open({ path: ":memory:" });
  const { barrier, seal, shares } = await openSealedStack({ raw });
  try {
    for (let i = 0; i < 300; i++) await barrier.put(`k/${String(i).padStart(3, "0")}`, Buffer.from(`v${i}`));
    await seal.rotate();
    const first = seal.rewrapInBackground({ batchSize: 10 });
    expect(seal.rewrapInBackground()).toBe(first);
    const report = await first;
    expect(report).toMatchObject({ targetVersion: 2, rewrapped: 300, complete: true });
    for (let i = 0; i < 300; i += 37) expect(version(await raw.get(`k/${String(i).padStart(3, "0")}`))).toBe(2);

    await seal.rotate();
    const stopped = seal.rewrapInBackground({ batchSize: 10 });
    seal.seal();
    const partial = await stopped;
    // Sealing stops it: either after its first batch (complete false) or it failed on SEALED.
    expect(partial === undefined || partial.complete === false).toBe(true);
    await seal.unseal(shares[0] as Buffer);
    const resumed = await seal.rewrapInBackground({ batchSize: 50 });
    expect(resumed?.complete).toBe(true);
    for (let i = 0; i < 300; i += 37) expect(version(await raw.get(`k/${String(i).padStart(3, "0")}`))).toBe(3);
    expect((await barrier.get("k/123"))?.toString()).toBe("v123");
  } finally {
    seal.seal();
    await raw.close();
  }
});
