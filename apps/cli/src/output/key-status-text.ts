import { formatKeyValueTable, formatTable } from "./format-table.js";
import { formatValue } from "./format-value.js";

/** `GET /v1/sys/key-status`'s data. */
export interface KeyStatusBody {
  term?: number;
  install_time?: string;
  encryptions?: number;
  rotate_after_encryptions?: number | null;
  versions?: Array<{ version?: number; state?: string; created_time?: string; encryptions?: number }>;
}

/** The key status as `operator key-status` and `operator rotate` print it: a summary, then every key version. */
export function keyStatusText(status: KeyStatusBody): string {
  let text = formatKeyValueTable([
    ["Key Term", formatValue(status.term)],
    ["Install Time", formatValue(status.install_time)],
    ["Encryption Count", formatValue(status.encryptions)],
    ...(status.rotate_after_encryptions ? [["Rotate After", formatValue(status.rotate_after_encryptions)] as [string, string]] : []),
  ]);
  if (status.versions !== undefined && status.versions.length > 0) {
    text += `\n${formatTable(
      ["Version", "State", "Created", "Encryptions"],
      status.versions.map((v) => [formatValue(v.version), formatValue(v.state), formatValue(v.created_time), formatValue(v.encryptions)]),
    )}`;
  }
  return text;
}
