import { BlockList, isIPv4, isIPv6 } from "node:net";
import { badRequest } from "../http/vault-error.js";

/** The most CIDR blocks one setting may hold. */
export const MAX_CIDR_BLOCKS = 64;

interface Block {
  address: string;
  prefix: number;
  family: "ipv4" | "ipv6";
}

/**
 * CIDR blocks as Vault's `secret_id_bound_cidrs` and `cidr_list` take them: a list of strings or
 * one comma-separated string of `address/prefix` (a bare address is a single-address block).
 * Each is checked with Node's address parsers (no regular expression sees the input) and
 * returned in a normal spelling; an invalid one is a 400 naming the field.
 */
export function parseCidrList(value: unknown, name: string): string[] {
  if (value === undefined || value === null || value === "") return [];
  const items = typeof value === "string" ? value.split(",") : value;
  if (!Array.isArray(items) || !items.every((item) => typeof item === "string")) throw badRequest(`${name} must be a list of CIDR blocks`);
  const blocks = new Set<string>();
  for (const raw of items as string[]) {
    const text = raw.trim();
    if (text === "") continue;
    const block = parseBlock(text);
    if (block === null) throw badRequest(`${name}: ${JSON.stringify(text.slice(0, 64))} is not a valid CIDR block`);
    blocks.add(`${block.address}/${block.prefix}`);
  }
  if (blocks.size > MAX_CIDR_BLOCKS) throw badRequest(`${name} holds more than ${MAX_CIDR_BLOCKS} CIDR blocks`);
  return [...blocks].sort();
}

/** Whether `address` (a client address, IPv4-mapped IPv6 included) lies in one of `cidrs`. */
export function addressInCidrs(address: string, cidrs: readonly string[]): boolean {
  const ip = unmapped(address);
  const family = isIPv4(ip) ? "ipv4" : isIPv6(ip) ? "ipv6" : null;
  if (family === null) return false;
  const list = new BlockList();
  for (const cidr of cidrs) {
    const block = parseBlock(cidr);
    if (block !== null) list.addSubnet(block.address, block.prefix, block.family);
  }
  return list.check(ip, family);
}

/** Whether every block of `inner` lies inside a block of `outer` (Vault's subset rule for a secret id's CIDRs). */
export function cidrsWithin(inner: readonly string[], outer: readonly string[]): boolean {
  if (outer.length === 0) return true;
  return inner.every((cidr) => {
    const block = parseBlock(cidr);
    if (block === null) return false;
    return outer.some((candidate) => {
      const container = parseBlock(candidate);
      if (container === null || container.family !== block.family || container.prefix > block.prefix) return false;
      const list = new BlockList();
      list.addSubnet(container.address, container.prefix, container.family);
      return list.check(block.address, block.family);
    });
  });
}

function parseBlock(text: string): Block | null {
  const slash = text.indexOf("/");
  const address = unmapped(slash < 0 ? text : text.slice(0, slash));
  const family = isIPv4(address) ? "ipv4" : isIPv6(address) ? "ipv6" : null;
  if (family === null) return null;
  const width = family === "ipv4" ? 32 : 128;
  let prefix = width;
  if (slash >= 0) {
    const digits = text.slice(slash + 1);
    if (digits.length === 0 || digits.length > 3) return null;
    for (let i = 0; i < digits.length; i++) {
      const code = digits.charCodeAt(i);
      if (code < 0x30 || code > 0x39) return null;
    }
    prefix = Number(digits);
    if (prefix > width) return null;
  }
  return { address, prefix, family };
}

// An IPv4 client seen through an IPv6 socket is `::ffff:a.b.c.d`: its IPv4 address is what
// IPv4 blocks are about.
function unmapped(address: string): string {
  const lower = address.toLowerCase();
  return lower.startsWith("::ffff:") && isIPv4(lower.slice(7)) ? lower.slice(7) : address;
}
