import { describe, expect, it } from "vitest";
import { deleteTree } from "../src/index.js";
import { memoryStorage } from "./memory-storage.js";

describe("deleteTree", () => {
  it("deletes every key below the prefix, across pages and folders, and nothing else", async () => {
    const storage = memoryStorage();
    const keep = ["keep", "logical/a", "logical/b", "logical/abc/x"];
    const doomed = [
      "logical/ab/1",
      "logical/ab/2/3",
      "logical/ab/2/4",
      ...Array.from({ length: 25 }, (_, i) => `logical/ab/flat/${String(i).padStart(2, "0")}`),
    ];
    for (const key of [...keep, ...doomed]) storage.data.set(key, Buffer.from("v"));
    const listed: number[] = [];
    const deleted = await storage.transaction(async (tx) => {
      const listPage = tx.listPage.bind(tx);
      const counting = {
        ...tx,
        listPage: async (p: string, a: string, l: number) => {
          listed.push(l);
          return listPage(p, a, l);
        },
      };
      return deleteTree(counting, "logical/ab/", { pageSize: 4 });
    });
    expect(deleted).toBe(doomed.length);
    expect([...storage.data.keys()].sort()).toEqual([...keep].sort());
    expect(new Set(listed)).toEqual(new Set([4]));
  });

  it("deletes everything under the empty prefix, with the default page", async () => {
    const storage = memoryStorage();
    for (let i = 0; i < 1005; i++) storage.data.set(`k/${i}`, Buffer.from("v"));
    storage.data.set("top", Buffer.from("v"));
    expect(await storage.transaction((tx) => deleteTree(tx, ""))).toBe(1006);
    expect(storage.data.size).toBe(0);
  });

  it("rejects a page size that is not a positive integer", async () => {
    const storage = memoryStorage();
    await expect(storage.transaction((tx) => deleteTree(tx, "", { pageSize: 0 }))).rejects.toThrow(RangeError);
  });
});
