import { formatKeyValueTable, formatSectionTitle, formatTable } from "../output/format-table.js";
import { formatValue } from "../output/format-value.js";

/** A version's metadata as KV version 2 answers it (`created_time`, `version`, …). */
export type KvVersionMetadata = Record<string, unknown>;

/** `== Secret Path ==` and the path, as Vault's CLI heads KV output. */
export function secretPathText(displayPath: string): string {
  return `${formatSectionTitle("Secret Path")}${displayPath}\n`;
}

/**
 * A titled `Key`/`Value` table of an object's fields, sorted by key. In metadata (`emptyIsNone`)
 * an empty string means "not set" (KV's `deletion_time`) and shows as `n/a`.
 */
export function fieldsText(title: string, fields: Record<string, unknown>, emptyIsNone = false): string {
  const rows = Object.keys(fields)
    .sort()
    .map((key) => [key, emptyIsNone && fields[key] === "" ? "n/a" : formatValue(fields[key])] as [string, string]);
  return `${formatSectionTitle(title, 24)}${formatKeyValueTable(rows)}`;
}

/** The output of `kv put` and `kv patch`: the path and the new version's metadata. */
export function writtenSecretText(displayPath: string, metadata: KvVersionMetadata): string {
  return `${secretPathText(displayPath)}\n${fieldsText("Metadata", metadata, true)}`;
}

/** The output of `kv get`: the path, the version's metadata, and its data. */
export function secretText(displayPath: string, metadata: KvVersionMetadata, data: Record<string, unknown>): string {
  return `${writtenSecretText(displayPath, metadata)}\n${fieldsText("Data", data)}`;
}

/** The output of `kv metadata get`: the key's settings, then a table of its versions. */
export function keyMetadataText(displayPath: string, metadata: Record<string, unknown>): string {
  const { versions, ...settings } = metadata;
  let text = `${secretPathText(displayPath)}\n${fieldsText("Metadata", settings, true)}`;
  if (typeof versions === "object" && versions !== null) {
    const entries = Object.entries(versions as Record<string, Record<string, unknown>>).sort(([a], [b]) => Number(a) - Number(b));
    text += `\n${formatSectionTitle("Versions", 24)}${formatTable(
      ["Version", "Created", "Deleted", "Destroyed"],
      entries.map(([version, info]) => [
        version,
        formatValue(info.created_time),
        deletionTime(info.deletion_time),
        formatValue(info.destroyed),
      ]),
    )}`;
  }
  return text;
}

// KV answers an empty string for "not deleted".
function deletionTime(value: unknown): string {
  return value === "" || value === null || value === undefined ? "n/a" : formatValue(value);
}
