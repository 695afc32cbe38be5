import type { JsonBody } from "./json-body.js";
import type { CliTestServer } from "./start-cli-test-server.js";

/** A JSON request straight to the server (to check its state after a command), with the given token. */
export async function api(
  server: CliTestServer,
  method: string,
  path: string,
  body?: unknown,
  token = server.rootToken,
): Promise<{ status: number; body: JsonBody }> {
  const response = await fetch(`${server.url}/v1/${path}`, {
    method,
    headers: { "x-vault-token": token, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}
