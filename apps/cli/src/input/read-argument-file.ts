import { readFileSync } from "node:fs";
import { usageError } from "../cli-error.js";

/** The UTF-8 text of a file named in an argument (`pass=@file`, `policy write NAME FILE`); unreadable is a usage error. */
export function readArgumentFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason =
      code === "ENOENT"
        ? "no such file"
        : code === "EACCES"
          ? "permission denied"
          : code === "EISDIR"
            ? "it is a directory"
            : ((error as Error).message ?? String(error));
    throw usageError(`cannot read ${file}: ${reason}`);
  }
}
