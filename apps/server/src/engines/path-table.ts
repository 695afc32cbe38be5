import { unsupportedOperation } from "../http/vault-error.js";

/** The methods a secrets engine or auth method path answers; `LIST` is a list request (`LIST`, or `GET ?list=true`). */
export type PathMethod = "GET" | "LIST" | "POST" | "PUT" | "PATCH" | "DELETE";

/** The handler of one method of one path; `call` is what the engine gives its handlers. */
export type PathHandler<Call> = (call: Call) => Promise<unknown>;

/**
 * An engine's paths: for each kind of path (as the engine's router names it), the handler of
 * each method it answers. A method a path does not answer is Vault's 405 "unsupported
 * operation". Engines declare their paths this way instead of switching on method and path,
 * so that what an engine serves can be read (and documented) from one table.
 */
export type PathTable<Kind extends string, Call> = Readonly<Record<Kind, Readonly<Partial<Record<PathMethod, PathHandler<Call>>>>>>;

/** The method of a request as a path table keys it. */
export function pathMethod(method: string, list: boolean): PathMethod | undefined {
  if (method === "GET" || method === "HEAD") return list ? "LIST" : "GET";
  if (method === "POST" || method === "PUT" || method === "PATCH" || method === "DELETE") return method;
  return undefined;
}

/** Runs the handler `table` declares for `kind` and `method`; 405 when there is none. */
export function dispatchPath<Kind extends string, Call>(
  table: PathTable<Kind, Call>,
  kind: Kind,
  method: PathMethod | undefined,
  call: Call,
): Promise<unknown> {
  const handler = method === undefined ? undefined : table[kind][method];
  if (handler === undefined) throw unsupportedOperation();
  return handler(call);
}
