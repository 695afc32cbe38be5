import { describeAuditStoreConformance } from "@egide/storage-conformance";
import { afterAll } from "vitest";
import { SqliteBackend } from "../src/index.js";
import { tempDirectory } from "./temp-database.js";

const temp = tempDirectory("sqlite-audit");
afterAll(() => temp.remove());

describeAuditStoreConformance({ name: "sqlite (file)", create: async () => SqliteBackend.open({ path: temp.file() }) });
describeAuditStoreConformance({ name: "sqlite (:memory:)", create: async () => SqliteBackend.open({ path: ":memory:" }) });
