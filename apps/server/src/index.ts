export { startServer } from "./start-server.js";
export type { StartServerOptions, RunningServer } from "./start-server.js";
export { startDevServer } from "./dev-server.js";
export type { DevServer } from "./dev-server.js";
export { parseServerConfig, parseAddress } from "./config/parse-server-config.js";
export type { ServerConfig, ListenerConfig } from "./config/server-config.js";
export type { ServerContext, Capability, Caller, Operation } from "./server-context.js";
export { VaultError } from "./http/vault-error.js";
export { TOKEN_PREFIX } from "./auth/token-store.js";
