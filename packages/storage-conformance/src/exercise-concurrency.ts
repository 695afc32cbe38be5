import { expect, it } from "vitest";
import { compareKeys } from "@egide/storage-core";
import type { StorageBackend } from "@egide/storage-core";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { nextTurn, sleep } from "./sleep.js";
import { SLOW_TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8 } from "./utf8.js";

const WRITERS = 24;
const KEYS_PER_WRITER = 5;
const READERS = 4;

/** One reader's view of the writers' keys: for each writer, its names and values (if read). */
type Observation = Map<string, Map<string, string | undefined>>;

function writerId(index: number): string {
  return `w${String(index).padStart(2, "0")}`;
}

/** Splits "cw/w07-k3" into writer "w07" and name "k3". */
function parseWriterKey(name: string): [string, string] {
  const [writer, file] = name.split("-");
  return [writer ?? name, file ?? ""];
}

function observe(entries: Iterable<[string, string | undefined]>): Observation {
  const byWriter: Observation = new Map();
  for (const [name, value] of entries) {
    const [writer, file] = parseWriterKey(name);
    let files = byWriter.get(writer);
    if (!files) {
      files = new Map();
      byWriter.set(writer, files);
    }
    files.set(file, value);
  }
  return byWriter;
}

/**
 * Each writer's keys must be one whole committed state: k0..k4 all from round 1, k0..k4 all
 * from round 2, or m0..m4 from round 3 (the round that deleted the k keys). Anything else is
 * a torn transaction.
 */
function tornWriters(observation: Observation): string[] {
  const problems: string[] = [];
  for (const [writer, files] of observation) {
    const names = [...files.keys()].sort();
    const kind = names[0]?.[0];
    const complete = Array.from({ length: KEYS_PER_WRITER }, (_, j) => `${kind}${j}`);
    const values = [...files.values()];
    const rounds = new Set(values.map((value) => value?.split("-")[1]));
    const valuesMatch =
      values.every((value) => value === undefined) ||
      (rounds.size === 1 &&
        names.every((name) => files.get(name) === `${writer}-${[...rounds][0]}-${name}`) &&
        (kind === "m" ? rounds.has("3") : rounds.has("1") || rounds.has("2")));
    if ((kind !== "k" && kind !== "m") || names.join() !== complete.join() || !valuesMatch) {
      problems.push(`${writer}: ${JSON.stringify(Object.fromEntries(files))}`);
    }
  }
  return problems;
}

/**
 * Concurrency: atomic visibility of concurrent transactions to snapshot readers, scans and
 * lists (OpenBao's exclusive and mixed writers, scaled down), no lost update in concurrent
 * read-modify-write, last-writer-wins without tearing on one key, and stable ordering of
 * reads that race writes.
 */
export function exerciseConcurrency(context: ConformanceContext): void {
  const test = (title: string, body: (backend: StorageBackend) => Promise<void>): void => {
    it(title, () => body(context.backend()), SLOW_TEST_TIMEOUT_MS);
  };

  test(`${WRITERS} concurrent transactions are each seen all or nothing by snapshot readers, scans and lists`, async (b) => {
    let writersDone = false;
    const torn: string[] = [];
    const reads = { snapshot: 0, scan: 0, list: 0 };

    const writer = async (index: number): Promise<void> => {
      const id = writerId(index);
      const files = Array.from({ length: KEYS_PER_WRITER }, (_, j) => j);
      await sleep(index % 7);
      for (const round of [1, 2]) {
        await b.transaction(async (tx) => {
          for (const j of files) {
            await tx.put(`cw/${id}-k${j}`, utf8(`${id}-${round}-k${j}`));
            await nextTurn();
          }
        });
      }
      // Round 3 moves the writer's data: deletes k0..k4 and creates m0..m4 in one commit.
      await b.transaction(async (tx) => {
        for (const j of files) {
          await tx.delete(`cw/${id}-k${j}`);
          await tx.put(`cw/${id}-m${j}`, utf8(`${id}-3-m${j}`));
        }
      });
    };

    const reader = async (index: number): Promise<void> => {
      let mode = index;
      while (!writersDone) {
        if (mode % 3 === 0) {
          const entries = await b.transaction(
            async (tx) => {
              const names = await tx.list("cw/");
              const read: [string, string | undefined][] = [];
              for (const name of names) {
                const value = await tx.get(`cw/${name}`);
                read.push([name, value === null ? "<vanished inside the snapshot>" : value.toString("utf8")]);
              }
              return read;
            },
            { readOnly: true },
          );
          torn.push(...tornWriters(observe(entries)).map((p) => `snapshot: ${p}`));
          reads.snapshot++;
        } else if (mode % 3 === 1) {
          const entries = await collectScan(b, "cw/");
          const read = entries.map((e): [string, string] => [e.key.slice(3), e.value.toString("utf8")]);
          torn.push(...tornWriters(observe(read)).map((p) => `scan: ${p}`));
          reads.scan++;
        } else {
          const names = await b.list("cw/");
          torn.push(...tornWriters(observe(names.map((n): [string, undefined] => [n, undefined]))).map((p) => `list: ${p}`));
          reads.list++;
        }
        mode++;
        await nextTurn();
      }
    };

    const readers = Array.from({ length: READERS }, (_, i) => reader(i));
    try {
      await Promise.all(Array.from({ length: WRITERS }, (_, i) => writer(i)));
    } finally {
      writersDone = true;
    }
    await Promise.all(readers);

    expect(torn, "readers saw a partly applied transaction").toEqual([]);
    expect(reads.snapshot + reads.scan + reads.list, "the readers never ran").toBeGreaterThan(0);
    const final = await collectScan(b, "cw/");
    expect(final).toHaveLength(WRITERS * KEYS_PER_WRITER);
    const finalTorn = tornWriters(observe(final.map((e): [string, string] => [e.key.slice(3), e.value.toString("utf8")])));
    expect(finalTorn).toEqual([]);
    expect(final.every((e) => e.key.includes("-m"))).toBe(true);
  });

  test("concurrent read-list-write transactions see their own previous rounds (mixed writers)", async (b) => {
    const writers = 10;
    const rounds = 4;
    const files = 5;
    const problems: string[] = [];
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let round = 1; round <= rounds; round++) {
          await b.transaction(async (tx) => {
            const listed = await tx.list(`mw/${w}/`);
            if (listed.length !== (round === 1 ? 0 : files)) problems.push(`writer ${w} round ${round} listed ${listed}`);
            for (let f = 0; f < files; f++) {
              const key = `mw/${w}/${f}`;
              const existing = await tx.get(key);
              const expected = round === 1 ? null : `${w}-${round - 1}-${f}`;
              if ((existing?.toString("utf8") ?? null) !== expected) {
                problems.push(`writer ${w} round ${round} read ${existing?.toString("utf8")} at ${key}`);
              }
              await tx.put(key, utf8(`${w}-${round}-${f}`));
            }
          });
        }
      }),
    );
    expect(problems).toEqual([]);
    const final = await collectScan(b, "mw/");
    expect(final).toHaveLength(writers * files);
    for (const { key, value } of final) {
      const [, w, f] = key.split("/");
      expect(value.toString("utf8")).toBe(`${w}-${rounds}-${f}`);
    }
  });

  test("20 concurrent read-modify-write transactions on one counter lose no update", async (b) => {
    const increments = 20;
    await Promise.all(
      Array.from({ length: increments }, (_, i) =>
        b.transaction(async (tx) => {
          const current = await tx.get("counter");
          const n = current === null ? 0 : Number(current.toString("utf8"));
          // Give other transactions a chance to interleave between the read and the write.
          await (i % 2 === 0 ? nextTurn() : sleep(1));
          await tx.put("counter", utf8(String(n + 1)));
        }),
      ),
    );
    expect((await b.get("counter"))?.toString("utf8")).toBe(String(increments));
  });

  test("50 concurrent puts of 4 KiB values to one key leave exactly one value, intact", async (b) => {
    const values = Array.from({ length: 50 }, (_, i) => {
      const value = Buffer.alloc(4096);
      for (let j = 0; j < value.length; j++) value[j] = (i * 31 + j * 7) & 0xff;
      value.writeUInt32BE(i, 0);
      return value;
    });
    await Promise.all(values.map((value) => b.put("hot", value)));
    const stored = await b.get("hot");
    expect(stored).not.toBeNull();
    const index = (stored as Buffer).readUInt32BE(0);
    expect(index).toBeLessThan(values.length);
    expect(hexOrNull(stored)).toBe(hexOrNull(values[index]));
  });

  test("100 concurrent puts to distinct keys all land", async (b) => {
    const keys = Array.from({ length: 100 }, (_, i) => `many/${String(i).padStart(3, "0")}`);
    await Promise.all(keys.map((key) => b.put(key, utf8(key))));
    const entries = await collectScan(b, "many/");
    expect(entries.map((e) => e.key)).toEqual(keys);
    expect(entries.every((e) => e.value.toString("utf8") === e.key)).toBe(true);
  });

  test("a racing put and delete of one key end in one of the two outcomes", async (b) => {
    for (let round = 0; round < 20; round++) {
      const value = utf8(`round-${round}`);
      await Promise.all([b.put("race", value), b.delete("race")]);
      expect([null, hexOrNull(value)]).toContain(hexOrNull(await b.get("race")));
    }
  });

  test("scans and pages that race writers stay sorted and free of duplicates", async (b) => {
    for (let i = 0; i < 40; i += 2) await b.put(`sc/${String(i).padStart(2, "0")}`, utf8("even"));
    let done = false;
    const problems: string[] = [];
    const writer = (async () => {
      for (let i = 1; i < 40; i += 2) {
        await b.put(`sc/${String(i).padStart(2, "0")}`, utf8("odd"));
        if (i % 4 === 1) await b.delete(`sc/${String(i - 1).padStart(2, "0")}`);
        await nextTurn();
      }
    })().finally(() => {
      done = true;
    });
    while (!done) {
      const keys = (await collectScan(b, "sc/")).map((e) => e.key);
      const page = await b.listPage("sc/", "", -1);
      for (const [label, seq] of [
        ["scan", keys],
        ["listPage", page],
      ] as const) {
        for (let i = 1; i < seq.length; i++) {
          if (compareKeys(seq[i - 1] as string, seq[i] as string) >= 0) problems.push(`${label}: ${seq.join(",")}`);
        }
      }
      await nextTurn();
    }
    await writer;
    expect(problems).toEqual([]);
  });
}
