import type { FastifyRequest } from "fastify";

/**
 * Go's `strconv.ParseBool`, which Vault applies to the `list` query parameter: `1 t T TRUE true
 * True` are true, `0 f F FALSE false False` are false, anything else is not a boolean
 * (`undefined`).
 */
export function parseGoBool(text: string): boolean | undefined {
  switch (text) {
    case "1":
    case "t":
    case "T":
    case "TRUE":
    case "true":
    case "True":
      return true;
    case "0":
    case "f":
    case "F":
    case "FALSE":
    case "false":
    case "False":
      return false;
    default:
      return undefined;
  }
}

/**
 * What a GET's `list` query parameter asks for, read as Vault reads it (`r.URL.Query().Get("list")`:
 * the first value; an empty or absent one is a read): `true` for a list request, `false` for a
 * read, `"invalid"` for a value Go's ParseBool refuses, which Vault answers with 400.
 */
export function listParameter(request: FastifyRequest): boolean | "invalid" {
  const raw = (request.query as Record<string, unknown> | undefined)?.list;
  const first = Array.isArray(raw) ? raw[0] : raw;
  if (first === undefined || first === "") return false;
  if (typeof first !== "string") return "invalid";
  return parseGoBool(first) ?? "invalid";
}
