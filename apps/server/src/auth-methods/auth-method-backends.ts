import { APPROLE_BACKEND } from "./approle/approle-backend.js";
import type { AuthMethodBackend } from "./auth-method-call.js";
import type { AuthMethodType } from "./auth-mount-table.js";
import { USERPASS_BACKEND } from "./userpass/userpass-backend.js";

/** The implementation of each auth method type. */
export const AUTH_METHOD_BACKENDS: Readonly<Record<AuthMethodType, AuthMethodBackend>> = {
  approle: APPROLE_BACKEND as unknown as AuthMethodBackend,
  userpass: USERPASS_BACKEND as unknown as AuthMethodBackend,
};
