import { describe, expect, it } from "vitest";
import { auditQueryLimit, normalizeAuditEntry } from "../src/index.js";

describe("normalizeAuditEntry", () => {
  it("fills defaults", () => {
    const row = normalizeAuditEntry({ operation: "read", path: "secret/a", success: true });
    expect(row).toMatchObject({ tenantId: null, sourceIp: null, userId: null, requestId: null, errorMessage: null, metadata: null });
    expect(row.timestamp).toBeInstanceOf(Date);
  });

  it.each([
    [{ tenantId: "not-a-uuid" }, /tenantId must be a UUID/],
    [{ requestId: "123" }, /requestId must be a UUID/],
    [{ sourceIp: "999.1.1.1" }, /sourceIp must be an IP address/],
    [{ operation: "" }, /operation must be a non-empty string/],
    [{ timestamp: new Date(Number.NaN) }, /timestamp must be a valid Date/],
  ])("rejects %j", (patch, message) => {
    expect(() => normalizeAuditEntry({ operation: "read", path: "p", success: true, ...patch })).toThrow(message);
  });

  it("accepts IPv6 and UUIDs", () => {
    expect(() =>
      normalizeAuditEntry({
        operation: "read",
        path: "p",
        success: false,
        sourceIp: "::1",
        requestId: "6f1c1a84-56c5-4b4e-9a65-9d0d8b2a7c11",
      }),
    ).not.toThrow();
  });

  it("clamps the query limit", () => {
    expect(auditQueryLimit({})).toBe(1000);
    expect(auditQueryLimit({ limit: 50 })).toBe(50);
    expect(auditQueryLimit({ limit: 10 ** 9 })).toBe(10000);
    expect(auditQueryLimit({ limit: 0 })).toBe(1000);
  });
});
