import { vaultResponse } from "../http/vault-response.js";
import type { AuthMethodCall } from "./auth-method-call.js";

/** Answers 200 with `data` in Vault's envelope. */
export function answerData(call: AuthMethodCall, data: unknown): unknown {
  return call.reply.code(200).send(vaultResponse(call.request, data));
}

/** Answers 204 without a body. */
export function answerNoContent(call: AuthMethodCall): unknown {
  return call.reply.code(204).send();
}

/** Answers a list: `{keys}`, or Vault's 404 with no errors when there is nothing to list. */
export function answerKeys(call: AuthMethodCall, keys: string[]): unknown {
  if (keys.length === 0) return call.reply.code(404).send({ errors: [] });
  return answerData(call, { keys });
}
