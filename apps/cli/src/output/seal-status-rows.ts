import { formatValue } from "./format-value.js";

/** The seal status body (`/v1/sys/seal-status`, `/v1/sys/unseal`), as far as the CLI reads it. */
export interface SealStatusBody {
  type?: string;
  initialized?: boolean;
  sealed?: boolean;
  t?: number;
  n?: number;
  progress?: number;
  nonce?: string;
  version?: string;
  storage_type?: string;
}

/** The `Key`/`Value` rows Vault's CLI prints for a seal status (unseal progress only while sealed). */
export function sealStatusRows(status: SealStatusBody): Array<[string, string]> {
  const rows: Array<[string, string]> = [
    ["Seal Type", formatValue(status.type)],
    ["Initialized", formatValue(status.initialized)],
    ["Sealed", formatValue(status.sealed)],
    ["Total Shares", formatValue(status.n)],
    ["Threshold", formatValue(status.t)],
  ];
  if (status.sealed === true && status.initialized === true) {
    rows.push(["Unseal Progress", `${status.progress ?? 0}/${status.t ?? "?"}`]);
    rows.push(["Unseal Nonce", status.nonce === undefined || status.nonce === "" ? "n/a" : status.nonce]);
  }
  rows.push(["Version", formatValue(status.version)]);
  if (status.storage_type !== undefined) rows.push(["Storage Type", status.storage_type]);
  return rows;
}
