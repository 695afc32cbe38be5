import { describeStorageConformance } from "@egide/storage-conformance";
import { afterAll } from "vitest";
import { SqliteBackend } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

// Every test gets a new database file (WAL, reader connection, reader pool): the
// configuration production uses.
const temp = tempDirectory("sqlite-conformance");
afterAll(() => temp.remove());

describeStorageConformance({
  name: "sqlite (file, WAL)",
  create: async () => SqliteBackend.open({ path: temp.file() }),
  capabilities: { getMany: true, changeFeed: true },
});

// A small value limit, to check the limit is the configured one and not a constant.
describeStorageConformance({
  name: "sqlite (file, DELETE journal, 64 KiB values)",
  create: async () => SqliteBackend.open({ path: temp.file(), journalMode: "DELETE", synchronous: "FULL", maxValueBytes: 64 * 1024 }),
  maxValueBytes: 64 * 1024,
  capabilities: { getMany: true, changeFeed: true },
});
