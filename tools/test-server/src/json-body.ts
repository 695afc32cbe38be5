/**
 * A parsed JSON answer body. Tests read the fields of the server's many answer shapes directly
 * (`reply.body.data.keys`, `reply.body.auth.client_token`), so it is left untyped on purpose.
 */
// biome-ignore lint/suspicious/noExplicitAny: a JSON answer of any shape, read field by field by the tests' assertions
export type JsonBody = any;
