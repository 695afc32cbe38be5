// Real Egide servers for the apps' end-to-end tests (never published).
export { startTestServer } from "./start-test-server.js";
export type { TestServer, TestServerOptions } from "./start-test-server.js";
export { startCliTestServer } from "./start-cli-test-server.js";
export type { CliTestServer, CliTestServerOptions } from "./start-cli-test-server.js";
export { call } from "./call.js";
export type { JsonBody } from "./json-body.js";
export { rawHttp } from "./raw-http.js";
export { api } from "./api.js";
export { closedPort } from "./closed-port.js";
export { selfSignedCertificate } from "./self-signed-certificate.js";
export type { CertificateFiles, CertificateNames } from "./self-signed-certificate.js";
