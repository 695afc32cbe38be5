import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { compareKeys, listChildren, runSkipScan, runSkipScanAsync, type KeySeek } from "../src/index.js";

/** The obvious O(n) listing, to check the skip-scan against. */
function naiveList(keys: string[], prefix: string, after: string, limit: number): string[] {
  const entries = new Set<string>();
  for (const key of keys) {
    if (!key.startsWith(prefix)) continue;
    const rest = key.slice(prefix.length);
    if (rest === "") continue;
    const slash = rest.indexOf("/");
    entries.add(slash === -1 ? rest : rest.slice(0, slash + 1));
  }
  const sorted = [...entries].sort(compareKeys).filter((e) => after === "" || compareKeys(e, after) > 0);
  return limit > 0 ? sorted.slice(0, limit) : sorted;
}

function seekIn(sorted: string[]) {
  return (probe: KeySeek): string[] =>
    sorted
      .filter((k) => {
        const lower = probe.inclusive ? compareKeys(k, probe.from) >= 0 : compareKeys(k, probe.from) > 0;
        return lower && (probe.before === null || compareKeys(k, probe.before) < 0);
      })
      .slice(0, probe.limit);
}

const segment = fc.constantFrom("a", "b", "ab", "a-", "a0", "é", "😀", "\uffff", "%", "_");
const keyArb = fc.array(segment, { minLength: 1, maxLength: 4 }).map((s) => s.join("/"));
const prefixArb = fc.oneof(
  fc.constant(""),
  fc.array(segment, { minLength: 1, maxLength: 2 }).map((s) => `${s.join("/")}/`),
  segment,
);

describe("listChildren", () => {
  it("matches a naive listing for every prefix, cursor, limit and batch size", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(keyArb, { maxLength: 30 }),
        prefixArb,
        fc.oneof(fc.constant(""), keyArb, prefixArb),
        fc.integer({ min: -1, max: 5 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        (keys, prefix, after, limit, initial, growth) => {
          const sorted = [...keys].sort(compareKeys);
          const listed = runSkipScan(
            listChildren(prefix, after, limit, { first: initial + growth, initial, max: initial * 2 ** growth }),
            seekIn(sorted),
          );
          expect(listed).toEqual(naiveList(keys, prefix, after, limit));
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("probes once per child with a batch of one, not once per key", () => {
    const keys = ["f/a", ...Array.from({ length: 500 }, (_, i) => `f/big/${i}`), "f/z"].sort(compareKeys);
    let probes = 0;
    let rows = 0;
    const seek = seekIn(keys);
    const listed = runSkipScan(listChildren("f/", "", 0, { initial: 1, max: 1 }), (p) => {
      probes++;
      const found = seek(p);
      rows += found.length;
      return found;
    });
    expect(listed).toEqual(["a", "big/", "z"]);
    expect(probes).toBe(4);
    expect(rows).toBe(3);
  });

  it("reads a flat folder in batches and a deep folder in one batch plus a jump", () => {
    const flat = Array.from({ length: 100 }, (_, i) => `flat/${String(i).padStart(3, "0")}`);
    const deep = Array.from({ length: 10_000 }, (_, i) => `deep/x/${i}`);
    const keys = [...flat, ...deep, "deep/y"].sort(compareKeys);
    const count = (prefix: string) => {
      let probes = 0;
      let rows = 0;
      const seek = seekIn(keys);
      const listed = runSkipScan(listChildren(prefix, "", 0, { initial: 32, max: 32 }), (p) => {
        probes++;
        const found = seek(p);
        rows += found.length;
        return found;
      });
      return { listed: listed.length, probes, rows };
    };
    expect(count("flat/")).toEqual({ listed: 100, probes: 4, rows: 100 });
    expect(count("deep/")).toEqual({ listed: 2, probes: 2, rows: 33 });
  });

  it("grows the batch over runs of leaves and shrinks it after a folder", () => {
    const keys = [...Array.from({ length: 100 }, (_, i) => `a/${String(i).padStart(3, "0")}`), "a/zz/deep", "a/zzz"].sort(compareKeys);
    const limits: number[] = [];
    const seek = seekIn(keys);
    const listed = runSkipScan(listChildren("a/", "", 0, { initial: 1, max: 16 }), (p) => {
      limits.push(p.limit);
      return seek(p);
    });
    expect(listed).toHaveLength(102);
    expect(limits.slice(0, 6)).toEqual([1, 2, 4, 8, 16, 16]);
  });

  it("runs the same way with an asynchronous probe", async () => {
    const keys = ["x/1", "x/2/3", "y"];
    const listed = await runSkipScanAsync(listChildren("x/", "", 0), async (p) => seekIn(keys)(p));
    expect(listed).toEqual(["1", "2/"]);
  });
});
