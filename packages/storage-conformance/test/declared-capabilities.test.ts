import { describe, expect, it } from "vitest";
import { resolveConformanceOptions } from "../src/conformance-options.js";
import type { StorageConformanceOptions } from "../src/index.js";
import { ReferenceModel } from "../src/index.js";

// The `capabilities` option is checked when the suite is registered: a typo must not silently
// declare a capability absent (which the suite would then report as "offered but not declared",
// a confusing message for what is a misspelt option).
const base: StorageConformanceOptions = { name: "options", create: async () => new ReferenceModel() };
const resolve = (capabilities: unknown) => resolveConformanceOptions({ ...base, capabilities } as StorageConformanceOptions).capabilities;

describe("capabilities option", () => {
  it("declares nothing by default", () => {
    expect(resolveConformanceOptions(base).capabilities).toEqual({ backendGetMany: false, transactionGetMany: false, changeFeed: false });
    expect(resolve({})).toEqual({ backendGetMany: false, transactionGetMany: false, changeFeed: false });
  });

  it("resolves getMany for the backend, its transactions or both, and the change feed", () => {
    expect(resolve({ getMany: true, changeFeed: true })).toEqual({ backendGetMany: true, transactionGetMany: true, changeFeed: true });
    expect(resolve({ getMany: "backend" })).toEqual({ backendGetMany: true, transactionGetMany: false, changeFeed: false });
    expect(resolve({ getMany: "transaction" })).toEqual({ backendGetMany: false, transactionGetMany: true, changeFeed: false });
    expect(resolve({ getMany: false, changeFeed: false })).toEqual({ backendGetMany: false, transactionGetMany: false, changeFeed: false });
  });

  it("rejects an unknown capability, a wrong value and a non-object at registration", () => {
    expect(() => resolve({ changefeed: true })).toThrow(/unknown capability `changefeed`/);
    expect(() => resolve({ putMany: true })).toThrow(TypeError);
    expect(() => resolve({ getMany: "both" })).toThrow(/getMany/);
    expect(() => resolve({ changeFeed: "yes" })).toThrow(/changeFeed/);
    expect(() => resolve(["getMany"])).toThrow(TypeError);
    expect(() => resolve(null)).toThrow(TypeError);
  });
});
