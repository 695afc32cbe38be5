import { ConfigError, DEFAULT_MAX_VALUE_BYTES } from "@egide/storage-core";
import { describe, expect, it } from "vitest";
import { backendDefinition, parse__Type__Config } from "../src/index.js";

describe("[storage.__TYPE__] options", () => {
  it("fills in the defaults of an empty or missing table", () => {
    expect(parse__Type__Config({})).toEqual({ maxValueBytes: DEFAULT_MAX_VALUE_BYTES });
    expect(parse__Type__Config(undefined)).toEqual({ maxValueBytes: DEFAULT_MAX_VALUE_BYTES });
  });

  it("reads max_value_bytes and refuses a value out of range, naming the option", () => {
    expect(parse__Type__Config({ max_value_bytes: 4096 }).maxValueBytes).toBe(4096);
    const error = (() => {
      try {
        parse__Type__Config({ max_value_bytes: 0 });
      } catch (caught) {
        return caught;
      }
    })();
    expect(ConfigError.isInstance(error)).toBe(true);
    expect(String((error as Error).message)).toContain("storage.__TYPE__.max_value_bytes");
  });

  it("refuses an unknown option by its full name, so a typo is never silently ignored", () => {
    expect(() => parse__Type__Config({ max_value_byte: 10 })).toThrow("storage.__TYPE__.max_value_byte");
  });

  it("is what the server loads: its type, package and contract version", () => {
    expect(backendDefinition.type).toBe("__TYPE__");
    expect(backendDefinition.packageName).toBe("__PACKAGE__");
    expect(backendDefinition.contractVersion).toBeGreaterThan(0);
  });
});
