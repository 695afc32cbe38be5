/**
 * A table with a header row, a dashed rule under it, and columns padded to their widest cell
 * (Vault's CLI layout). Cells are single-line: line breaks show as `\n`.
 */
export function formatTable(headers: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const clean = (cell: string) => cell.replace(/\r?\n/g, "\\n");
  const all = [headers.map(clean), headers.map((header) => "-".repeat(header.length)), ...rows.map((row) => row.map(clean))];
  const widths = headers.map((_, column) => Math.max(...all.map((row) => (row[column] ?? "").length)));
  const lines = all.map((row) =>
    row
      .map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("    ")
      .trimEnd(),
  );
  return `${lines.join("\n")}\n`;
}

/** A two-column `Key` / `Value` table. */
export function formatKeyValueTable(rows: ReadonlyArray<readonly [string, string]>): string {
  return formatTable(["Key", "Value"], rows);
}

/** A `== Title ==` banner, as Vault's `kv get` heads its sections. */
export function formatSectionTitle(title: string, width = title.length + 6): string {
  const pad = Math.max(2, width - title.length - 2);
  const left = "=".repeat(Math.floor(pad / 2));
  const right = "=".repeat(Math.ceil(pad / 2));
  return `${left} ${title} ${right}\n`;
}
