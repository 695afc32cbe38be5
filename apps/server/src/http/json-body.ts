import type { FastifyInstance } from "fastify";
import { badRequest } from "./vault-error.js";

/** The deepest JSON body accepted; deeper ones are refused before any handler recurses into them. */
export const MAX_JSON_DEPTH = 500;

/**
 * Parses a request body as JSON, whatever its Content-Type says (Vault clients often send
 * none): an empty body is no body; invalid JSON, or JSON nested deeper than
 * {@link MAX_JSON_DEPTH}, is a 400 with Vault's message.
 */
export function parseJsonBody(body: Buffer | string): unknown {
  if (body.length === 0) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof body === "string" ? body : body.toString("utf8"));
  } catch {
    throw badRequest("failed to parse JSON input: the request body is not valid JSON");
  }
  if (depthExceeds(parsed, MAX_JSON_DEPTH)) throw badRequest(`failed to parse JSON input: exceeded max depth (${MAX_JSON_DEPTH})`);
  return parsed;
}

// Iterative, so a hostile body cannot overflow the stack here either.
function depthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 0 }];
  while (stack.length > 0) {
    const { value: current, depth } = stack.pop() as { value: unknown; depth: number };
    if (typeof current !== "object" || current === null) continue;
    if (depth >= limit) return true;
    for (const child of Object.values(current))
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: depth + 1 });
  }
  return false;
}

/**
 * Makes `app` parse bodies of `contentType` (default: any) as JSON with {@link parseJsonBody},
 * so that every route sees the same body whatever the client declared.
 */
export function addJsonBodyParser(app: FastifyInstance, contentType = "*"): void {
  app.addContentTypeParser(contentType, { parseAs: "buffer" }, (_request, body: Buffer, done) => {
    try {
      done(null, parseJsonBody(body));
    } catch (error) {
      done(error as Error);
    }
  });
}
