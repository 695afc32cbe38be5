/**
 * One HTTP request to the server, as the crash loop's clients send it: JSON in, JSON out, a
 * deadline of its own. A connection error, a timeout or a body cut short throws: the caller
 * counts such a request as unknown (it may or may not have taken effect), never as answered.
 *
 * @param {string} url the server's base URL (`http://127.0.0.1:port`)
 * @param {string} method
 * @param {string} path starting with `/v1/`
 * @param {{ token?: string, body?: unknown, timeoutMs?: number }} [options]
 * @returns {Promise<{ status: number, body: any }>}
 */
export async function vaultRequest(url, method, path, options = {}) {
  const headers = {};
  if (options.token) headers["x-vault-token"] = options.token;
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`${url}${path}`, {
    method,
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
  });
  // The whole body must arrive for the answer to count: a process killed mid-response is unknown.
  const text = await response.text();
  return { status: response.status, body: text === "" ? null : JSON.parse(text) };
}
