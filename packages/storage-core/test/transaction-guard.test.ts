import { describe, expect, it } from "vitest";
import { StorageError, TransactionGuard } from "../src/index.js";

describe("TransactionGuard", () => {
  it("refuses writes in a read-only transaction and everything once closed", () => {
    const guard = new TransactionGuard("test", true, 4);
    expect(() => guard.read("a")).not.toThrow();
    expect(() => guard.put("a", new Uint8Array(1))).toThrow(expect.objectContaining({ code: "READ_ONLY" }));
    guard.close();
    for (const call of [() => guard.read("a"), () => guard.list("", "", 0), () => guard.delete("a")]) {
      expect(call).toThrow(expect.objectContaining({ code: "CLOSED" }));
    }
  });

  it("checks keys, values and listing arguments", () => {
    const guard = new TransactionGuard("test", false, 4);
    expect(() => guard.read("/a")).toThrow(expect.objectContaining({ code: "INVALID_KEY" }));
    expect(() => guard.put("a", new Uint8Array(5))).toThrow(expect.objectContaining({ code: "VALUE_TOO_LARGE" }));
    expect(() => guard.put("a", "text" as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => guard.delete("a")).not.toThrow();
    expect(() => guard.list("a//", "", 0)).toThrow(StorageError);
  });
});
