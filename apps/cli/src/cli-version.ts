import { readFileSync } from "node:fs";

/** This package's version (`egide --version`, the User-Agent header). */
export const CLI_VERSION: string = (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string })
  .version;
