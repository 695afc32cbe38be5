import type { AuditEntry } from "@egide/storage-core";

/** The capabilities of Vault's ACL policies. */
export type Capability = "create" | "read" | "update" | "patch" | "delete" | "list" | "sudo" | "deny";

/** Vault's request operations, as audit rows and policies name them. */
export type Operation = "create" | "read" | "update" | "patch" | "delete" | "list";

/** Who made a request, once its token was checked. */
export interface Caller {
  /** The token's accessor: the audit log's `user_id`; never the token. */
  accessor: string;
  /** The token's policies (`root` for the root token). */
  policies: string[];
  /** The token's display name. */
  displayName: string;
}

/** An audit row being prepared for a request. */
export type PendingAudit = Omit<AuditEntry, "success" | "errorMessage"> & { written: boolean };
