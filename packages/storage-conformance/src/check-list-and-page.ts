import { expect } from "vitest";
import { compareKeys } from "@egide/storage-core";
import type { StorageBackend, Transaction } from "@egide/storage-core";

/** Anything that lists: a backend, or a transaction. */
export type Lister = Pick<StorageBackend | Transaction, "list" | "listPage">;

/**
 * Port of OpenBao's `testListAndPage` (sdk/physical/testing.go): checks `list(prefix)` against
 * `expected`, then walks `listPage` with every cut the Go helper uses: limits -100, -1, 0,
 * count and count+1; a page-size-1 walk feeding each entry back as `after`; the rest of the
 * listing after each entry (unbounded, `count`, and exactly what remains); the first `n`
 * entries; a cursor before the first entry; a cursor after the last; a bogus cursor on an empty
 * listing.
 *
 * Where the Go helper assumes no entry sorts before "." or the first character, this port
 * computes the expected page instead, so it holds for any entry names.
 */
export async function checkListAndPage(lister: Lister, prefix: string, expected: readonly string[]): Promise<void> {
  const where = `prefix ${JSON.stringify(prefix)}`;
  const after = (cursor: string): string[] => expected.filter((entry) => compareKeys(entry, cursor) > 0);

  expect(await lister.list(prefix), `list(${where})`).toEqual(expected);
  expect(await lister.listPage(prefix, "", -100), `listPage(${where}, "", -100)`).toEqual(expected);
  expect(await lister.listPage(prefix, ".", -100), `listPage(${where}, ".", -100)`).toEqual(after("."));
  expect(await lister.listPage(prefix, "", -1), `listPage(${where}, "", -1)`).toEqual(expected);
  expect(await lister.listPage(prefix, "", 0), `listPage(${where}, "", 0)`).toEqual(expected);
  expect(await lister.listPage(prefix, "", expected.length), `listPage(${where}, "", count)`).toEqual(expected);
  expect(await lister.listPage(prefix, "", expected.length + 1), `listPage(${where}, "", count+1)`).toEqual(expected);

  if (expected.length === 0) {
    // A cursor on an empty listing changes nothing.
    expect(await lister.listPage(prefix, "bogus", -1), `listPage(${where}, "bogus", -1)`).toEqual([]);
    expect(await lister.listPage(prefix, "bogus", 2), `listPage(${where}, "bogus", 2)`).toEqual([]);
    return;
  }

  expect(await lister.listPage(prefix, "", 1), `first page of one (${where})`).toEqual([expected[0]]);
  for (let index = 0; index < expected.length; index++) {
    const cursor = expected[index] as string;
    const rest = expected.slice(index + 1);
    const label = `${where}, after ${JSON.stringify(cursor)}`;
    expect(await lister.listPage(prefix, cursor, 1), `next page of one (${label})`).toEqual(rest.slice(0, 1));
    if (rest.length > 0) {
      expect(await lister.listPage(prefix, cursor, -1), `rest, unbounded (${label})`).toEqual(rest);
      expect(await lister.listPage(prefix, cursor, expected.length), `rest, limit count (${label})`).toEqual(rest);
      expect(await lister.listPage(prefix, cursor, rest.length), `rest, exact limit (${label})`).toEqual(rest);
    }
    expect(await lister.listPage(prefix, "", index + 1), `first ${index + 1} (${where})`).toEqual(expected.slice(0, index + 1));
  }

  // A made-up cursor before the first entry: its first character (Go uses the first byte).
  const first = expected[0] as string;
  const firstChar = String.fromCodePoint(first.codePointAt(0) as number);
  const before = firstChar.length < first.length ? firstChar : " ";
  expect(await lister.listPage(prefix, before, -1), `cursor ${JSON.stringify(before)} (${where})`).toEqual(after(before));

  // A made-up cursor after the last entry yields nothing.
  const beyond = `${expected[expected.length - 1] as string}z`;
  expect(await lister.listPage(prefix, beyond, -1), `cursor past the end (${where})`).toEqual([]);
}
