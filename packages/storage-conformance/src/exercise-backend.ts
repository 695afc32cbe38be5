import { expect, it } from "vitest";
import type { StorageBackend } from "@egide/storage-core";
import { checkListAndPage } from "./check-list-and-page.js";
import { collectScan } from "./collect-scan.js";
import type { ConformanceContext } from "./conformance-context.js";
import { TEST_TIMEOUT_MS } from "./test-timeouts.js";
import { hexOrNull, utf8 } from "./utf8.js";

interface Step {
  title: string;
  run(backend: StorageBackend): Promise<void>;
}

const TEST = utf8("test");
const BAZ = utf8("baz");
const ZAP = utf8("zap");

/**
 * OpenBao's `ExerciseBackend` (sdk/physical/testing.go), step by step and in its order. The Go
 * function is one long sequence over one backend; here each step is its own test that first
 * replays the earlier steps on its fresh backend, so a failure names the step that broke while
 * every step still runs on exactly the state the Go sequence gives it.
 */
const STEPS: readonly Step[] = [
  {
    title: "initial list and pages are empty",
    run: (b) => checkListAndPage(b, "", []),
  },
  {
    title: "delete of an absent key succeeds",
    async run(b) {
      await expect(b.delete("foo")).resolves.toBeUndefined();
      expect(await b.list("")).toEqual([]);
    },
  },
  {
    title: "get of an absent key returns null",
    async run(b) {
      expect(await b.get("foo")).toBeNull();
    },
  },
  {
    title: "put makes an entry that get returns",
    async run(b) {
      await b.put("foo", TEST);
      expect(hexOrNull(await b.get("foo"))).toBe(hexOrNull(TEST));
    },
  },
  {
    title: "list and pages show the entry",
    run: (b) => checkListAndPage(b, "", ["foo"]),
  },
  {
    title: "delete removes the entry from list and pages",
    async run(b) {
      await b.delete("foo");
      await checkListAndPage(b, "", []);
    },
  },
  {
    title: "get after delete returns null",
    async run(b) {
      expect(await b.get("foo")).toBeNull();
    },
  },
  {
    title: "repeated puts of one key succeed (Vault GH-189)",
    async run(b) {
      await b.put("foo", TEST);
      await b.put("foo", TEST);
      expect(hexOrNull(await b.get("foo"))).toBe(hexOrNull(TEST));
      expect(await b.list("")).toEqual(["foo"]);
    },
  },
  {
    title: "a nested entry can be put and read",
    async run(b) {
      await b.put("foo/bar", BAZ);
      expect(hexOrNull(await b.get("foo/bar"))).toBe(hexOrNull(BAZ));
    },
  },
  {
    title: "list shows both a key and a subtree of the same name",
    run: (b) => checkListAndPage(b, "", ["foo", "foo/"]),
  },
  {
    title: "deleting a key with children leaves the children",
    async run(b) {
      await b.delete("foo");
      expect(await b.get("foo")).toBeNull();
      expect(hexOrNull(await b.get("foo/bar"))).toBe(hexOrNull(BAZ));
    },
  },
  {
    title: "removing a deeply nested key leaves no artifacts",
    async run(b) {
      await b.put("foo/nested1/nested2/nested3", BAZ);
      await b.delete("foo/nested1/nested2/nested3");
      await checkListAndPage(b, "foo/", ["bar"]);
    },
  },
  {
    title: "deleting one of two children keeps the folder",
    async run(b) {
      await b.put("foo/zip", ZAP);
      await b.delete("foo/bar");
      await checkListAndPage(b, "", ["foo/"]);
      await checkListAndPage(b, "foo/", ["zip"]);
    },
  },
  {
    title: "deleting the last child removes the folder",
    async run(b) {
      await b.delete("foo/zip");
      await checkListAndPage(b, "", []);
    },
  },
  {
    title: "deep values under an empty root keep their folders listed",
    async run(b) {
      await b.put("foo/nested1/nested2/value1", BAZ);
      await b.put("foo/nested1/nested2/value2", BAZ);
      await b.delete("foo/nested1/nested2/value2");
      await checkListAndPage(b, "", ["foo/"]);
      await checkListAndPage(b, "foo/", ["nested1/"]);
      await checkListAndPage(b, "foo/nested1/", ["nested2/"]);
      await checkListAndPage(b, "foo/nested1/nested2/", ["value1"]);
    },
  },
  {
    title: "deleting the last deep value empties the root",
    async run(b) {
      await b.delete("foo/nested1/nested2/value1");
      await checkListAndPage(b, "", []);
    },
  },
  {
    title: "pages stay right while keys are created one by one",
    async run(b) {
      const created: string[] = [];
      for (let i = 0; i < 10; i++) {
        const name = `key-${i}`;
        await b.put(`foo/${name}`, BAZ);
        created.push(name);
        await checkListAndPage(b, "foo/", created);
      }
    },
  },
  {
    title: "deleting every created key empties the store",
    async run(b) {
      for (let i = 0; i < 10; i++) await b.delete(`foo/key-${i}`);
      await checkListAndPage(b, "", []);
      expect(await collectScan(b, "")).toEqual([]);
    },
  },
];

/** Registers OpenBao's `ExerciseBackend` steps as ordered tests. */
export function exerciseBackend(context: ConformanceContext): void {
  STEPS.forEach((step, index) => {
    it(
      `step ${String(index + 1).padStart(2, "0")}: ${step.title}`,
      async () => {
        const backend = context.backend();
        for (const [earlierIndex, earlier] of STEPS.slice(0, index).entries()) {
          try {
            await earlier.run(backend);
          } catch (error) {
            if (error instanceof Error) {
              error.message = `(while replaying step ${earlierIndex + 1}, "${earlier.title}") ${error.message}`;
            }
            throw error;
          }
        }
        await step.run(backend);
      },
      TEST_TIMEOUT_MS,
    );
  });
}
