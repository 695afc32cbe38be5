import { SqliteBackend } from "@egide/storage-sqlite";
import { isAuditingTransaction } from "@egide/storage-core";
import { expect, test } from "vitest";
import { openSealedStack } from "./support/sealed-stack.js";

// Audit rows written inside a barrier transaction reach the backend's audit log unencrypted
// and commit or roll back with the transaction's (encrypted) writes.

test("an audit row in a barrier transaction commits with its writes and rolls back with them", async () => {
  const raw = SqliteBackend.open({ path: ":memory:" });
  const { barrier, seal } = await openSealedStack({ raw });
  try {
    await barrier.transaction(async (tx) => {
      if (!isAuditingTransaction(tx)) throw new Error("the barrier's transactions must offer appendAudit");
      await tx.put("secret/a", Buffer.from("one"));
      await tx.appendAudit({ operation: "update", path: "secret/a", success: true });
    });
    await expect(
      barrier.transaction(async (tx) => {
        if (!isAuditingTransaction(tx)) throw new Error("the barrier's transactions must offer appendAudit");
        await tx.put("secret/b", Buffer.from("two"));
        await tx.appendAudit({ operation: "update", path: "secret/b", success: true });
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    expect((await barrier.get("secret/a"))?.toString()).toBe("one");
    expect(await barrier.get("secret/b")).toBeNull();
    expect((await raw.audit.query()).map((row) => row.path)).toEqual(["secret/a"]);
    seal.seal();
    await expect(barrier.transaction(async () => undefined)).rejects.toMatchObject({ code: "SEALED" });
  } finally {
    await raw.close();
  }
});
