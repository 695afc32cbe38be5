import { accessSync, constants } from "node:fs";

/** Where Debian's `etcd-server` package installs the server. */
export const DEFAULT_ETCD_BINARY = "/usr/bin/etcd";

/**
 * The etcd server binary: `EGIDE_ETCD_BIN` when set, else `/usr/bin/etcd`. A missing binary is a
 * loud failure naming the Debian package, in CI and elsewhere alike: these tests are never
 * skipped, because a skipped backend test looks like a passing one.
 */
export function etcdBinary(): string {
  const path = process.env.EGIDE_ETCD_BIN || DEFAULT_ETCD_BINARY;
  try {
    accessSync(path, constants.X_OK);
  } catch (cause) {
    const where = process.env.CI === "true" ? "CI must install it (.ci/run)" : "install it";
    throw new Error(
      `etcd is required by these tests (they are never skipped) but ${path} is not an executable: ${where} with ` +
        "`apt-get install -y etcd-server` (Debian's etcd-server package, etcd 3.4), or point EGIDE_ETCD_BIN at an etcd 3.4+ binary.",
      { cause },
    );
  }
  return path;
}
