import { expect, it } from "vitest";
import { StorageErrorCode } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { expectStorageError } from "./expect-storage-error.js";
import { SLOW_TEST_TIMEOUT_MS, TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8 } from "./utf8.js";

/** Every byte value 0–255, in order. */
function allBytes(): Buffer {
  return Buffer.from(Array.from({ length: 256 }, (_, i) => i));
}

/** A value of `size` bytes with a non-repeating-looking pattern, so truncation shows. */
function patterned(size: number): Buffer {
  const value = Buffer.alloc(size);
  for (let i = 0; i < size; i++) value[i] = (i * 131 + (i >> 8)) & 0xff;
  return value;
}

/**
 * Values: empty and binary values round-trip exactly, the size limit (inclusive, and one byte
 * more rejected with `VALUE_TOO_LARGE` writing nothing, in and out of transactions), and
 * copy semantics of what goes in and what comes out.
 */
export function exerciseValues(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>, timeout = TEST_TIMEOUT_MS): void => {
    it(title, () => body(context.backend()), timeout);
  };
  const max = (): number => context.options.maxValueBytes;

  test("an empty value round-trips as an empty Buffer, not null", async (b) => {
    await b.put("empty", new Uint8Array(0));
    const value = await b.get("empty");
    expect(value).not.toBeNull();
    expect(Buffer.isBuffer(value)).toBe(true);
    expect(value?.length).toBe(0);
    expect(await b.exists("empty")).toBe(true);
    const scanned = await collectScan(b, "");
    expect(scanned.map((e) => [e.key, e.value.length])).toEqual([["empty", 0]]);
  });

  test("a value with all 256 byte values round-trips exactly", async (b) => {
    await b.put("bin", allBytes());
    expect(hexOrNull(await b.get("bin"))).toBe(allBytes().toString("hex"));
    const [entry] = await collectScan(b, "bin");
    expect(hexOrNull(entry?.value)).toBe(allBytes().toString("hex"));
  });

  test("a value that is not valid UTF-8 round-trips exactly", async (b) => {
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0xc3, 0x28, 0xed, 0xa0, 0x80, 0x00]);
    await b.put("not-utf8", bytes);
    expect(hexOrNull(await b.get("not-utf8"))).toBe(bytes.toString("hex"));
  });

  test(
    "the largest value (maxValueBytes) is accepted and read back whole",
    async (b) => {
      const value = patterned(max());
      await b.put("max", value);
      const read = await b.get("max");
      expect(read?.length).toBe(max());
      expect(read?.equals(value)).toBe(true);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  test(
    "a value of maxValueBytes + 1 is VALUE_TOO_LARGE and writes nothing",
    async (b) => {
      await b.put("existing", utf8("old"));
      const tooLarge = patterned(max() + 1);
      await expectStorageError(() => b.put("fresh", tooLarge), StorageErrorCode.VALUE_TOO_LARGE);
      await expectStorageError(() => b.put("existing", tooLarge), StorageErrorCode.VALUE_TOO_LARGE);
      expect(await b.exists("fresh")).toBe(false);
      expect((await b.get("existing"))?.toString()).toBe("old");
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  test(
    "VALUE_TOO_LARGE inside a transaction writes nothing",
    async (b) => {
      const tooLarge = patterned(max() + 1);
      await expect(
        b.transaction(async (tx) => {
          await tx.put("tx/small", utf8("small"));
          await expectStorageError(() => tx.put("tx/big", tooLarge), StorageErrorCode.VALUE_TOO_LARGE);
          // Rethrowing as a caller would: the whole transaction rolls back.
          throw new Error("rethrown");
        }),
      ).rejects.toThrow("rethrown");
      expect(await collectScan(b, "")).toEqual([]);
      // Swallowed, the rejected put still writes nothing while the rest commits.
      await b.transaction(async (tx) => {
        await tx.put("tx/small", utf8("small"));
        await tx.put("tx/big", tooLarge).catch(() => undefined);
      });
      expect((await collectScan(b, "")).map((e) => e.key)).toEqual(["tx/small"]);
    },
    SLOW_TEST_TIMEOUT_MS,
  );

  test("get returns a Buffer, also inside a transaction and from scan", async (b) => {
    await b.put("k", new Uint8Array([1, 2, 3]));
    expect(Buffer.isBuffer(await b.get("k"))).toBe(true);
    expect(Buffer.isBuffer(await b.transaction(async (tx) => tx.get("k")))).toBe(true);
    const [entry] = await collectScan(b, "");
    expect(Buffer.isBuffer(entry?.value)).toBe(true);
  });

  test("mutating the caller's input after put does not change the stored value", async (b) => {
    const input = Buffer.from("original");
    await b.put("copy", input);
    input.fill(0x21);
    expect((await b.get("copy"))?.toString()).toBe("original");
  });

  test("mutating the caller's input after tx.put does not change the committed value", async (b) => {
    const input = Buffer.from("original");
    await b.transaction(async (tx) => {
      await tx.put("copy", input);
      input.fill(0x21);
    });
    expect((await b.get("copy"))?.toString()).toBe("original");
  });

  test("mutating a returned Buffer does not change the stored value", async (b) => {
    await b.put("copy", utf8("original"));
    const first = await b.get("copy");
    first?.fill(0x21);
    expect((await b.get("copy"))?.toString()).toBe("original");
    const [entry] = await collectScan(b, "");
    entry?.value.fill(0x21);
    expect((await b.get("copy"))?.toString()).toBe("original");
  });

  test("a plain Uint8Array view stores only the bytes it covers", async (b) => {
    const backing = new Uint8Array([9, 9, 9, 1, 2, 3, 4, 9, 9]);
    await b.put("view", new Uint8Array(backing.buffer, 3, 4));
    expect(hexOrNull(await b.get("view"))).toBe("01020304");
    await b.put("sub", Buffer.from("xxhelloxx").subarray(2, 7));
    expect((await b.get("sub"))?.toString()).toBe("hello");
  });

  test("overwriting with a shorter value leaves no trailing bytes", async (b) => {
    await b.put("shrink", patterned(5000));
    await b.put("shrink", utf8("ab"));
    expect(hexOrNull(await b.get("shrink"))).toBe(utf8("ab").toString("hex"));
    await b.put("shrink", new Uint8Array(0));
    expect((await b.get("shrink"))?.length).toBe(0);
  });
}
