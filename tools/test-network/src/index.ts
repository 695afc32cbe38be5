export { TcpProxy } from "./tcp-proxy.js";
export type { TcpProxyMode, TcpProxyOptions } from "./tcp-proxy.js";
export { freeLoopbackPort } from "./free-port.js";
