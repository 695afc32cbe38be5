import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import type { Server } from "node:http";
import type { Socket } from "node:net";
import { createServer as createHttpsServer } from "node:https";
import Fastify from "fastify";
import type { FastifyInstance } from "fastify";
import { Counter } from "prom-client";
import type { ListenerConfig } from "../config/server-config.js";
import { AuditBatcher } from "../audit/audit-batcher.js";
import { auditEntry } from "../audit/audit-entry.js";
import type { EgideContext } from "../egide-context.js";
import { auditFailureResponse, errorResponse } from "./error-response.js";
import { listMethodFilter } from "./list-method-filter.js";
import { canonicalRewriteUrl, installRequestPipeline } from "./request-pipeline.js";
import { addJsonBodyParser } from "./json-body.js";
import { wrapResponseHook } from "../wrapping/wrap-response-hook.js";
import { wrappingTokenSession } from "../wrapping/wrapping-token.js";

/** Options of {@link buildApp}. */
export interface BuildAppOptions {
  listener: ListenerConfig;
  logLevel: string;
  /** Whether health and seal-status requests are audited. */
  auditHealthChecks: boolean;
  /**
   * The server's `max_lease_ttl` (ms), which caps wrap TTLs. Response wrapping (`X-Vault-Wrap-TTL`)
   * is served only when it is given; without it, wrapped requests are refused (400).
   */
  maxWrapTtlMs?: number;
}

const HEALTH_CHECK_PATHS = new Set(["sys/health", "sys/seal-status"]);

/**
 * The Fastify application: the listener (HTTP or TLS, with `LIST` requests rewritten before
 * Node's parser sees them), JSON bodies whatever the content type (Vault clients send JSON
 * without one), Vault's error shapes, response wrapping (when `maxWrapTtlMs` is given), and the
 * audit of every request that a mutation did not already audit in its own transaction. Routes
 * are registered by the caller.
 */
export function buildApp(ctx: EgideContext, options: BuildAppOptions): FastifyInstance {
  const app = Fastify({
    logger: options.logLevel === "silent" ? false : { level: options.logLevel },
    bodyLimit: options.listener.maxRequestBytes,
    genReqId: () => randomUUID(),
    return503OnClosing: true,
    // A malformed URL (bad percent-encoding) gets Vault's error shape, not Fastify's.
    frameworkErrors: (error, _request, reply) => {
      void (reply as unknown as { code(status: number): { send(body: unknown): void } }).code(400).send({ errors: [error.message] });
    },
    serverFactory: (handler) => listMethodServer(handler, options.listener),
    rewriteUrl: canonicalRewriteUrl,
    // A policy name may be 128 characters; the router's default (100) would send a longer one
    // to the catch-all instead of its route.
    routerOptions: { maxParamLength: 1024 },
  });

  const audit = new AuditBatcher(ctx.adapter);
  const requests = new Counter({
    name: "egide_http_requests_total",
    help: "HTTP requests answered, by method and status code.",
    labelNames: ["method", "status"],
    registers: [ctx.metrics],
  });

  installRequestPipeline(app, ctx, {
    unaudited: options.auditHealthChecks ? new Set() : HEALTH_CHECK_PATHS,
    ...(options.maxWrapTtlMs === undefined
      ? {}
      : { wrapping: { maxTtlMs: options.maxWrapTtlMs, wrappingTokenSession: (request) => wrappingTokenSession(ctx.tokens, request) } }),
  });

  // Bodies are JSON whatever the Content-Type says; an empty body is no body.
  app.removeAllContentTypeParsers();
  addJsonBodyParser(app);

  app.setErrorHandler(async (error, request, reply) => {
    const { status, errors, internal } = errorResponse(error);
    if (internal) request.log.error({ err: error, requestId: request.id }, "request failed");
    // A request refused before its body was read (no token, no permission) does not get to
    // send it: the connection closes after the answer instead of reading the rest.
    if (!request.raw.complete) void reply.header("connection", "close");
    return reply.code(status).header("content-type", "application/json; charset=utf-8").send({ errors });
  });
  // Vault answers an unknown path with 404 and an empty errors array.
  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ errors: [] }));

  // Response wrapping replaces the answer of a wrapped request before the audit hook below
  // writes its row and before it leaves (onSend hooks run in the order they are added).
  if (options.maxWrapTtlMs !== undefined) app.addHook("onSend", wrapResponseHook(ctx));

  // Every request that no mutation audited gets its row here, before the response leaves: if
  // the audit log cannot be written, the response is replaced by an error, so nothing is
  // answered (no secret read, no token issued) without its audit row.
  app.addHook("onSend", async (request, reply, payload) => {
    const state = request.egide;
    requests.labels(state?.method ?? request.method, String(reply.statusCode)).inc();
    if (!state || state.audited || state.skipAudit) return payload;
    const success = reply.statusCode < 400;
    if (HEALTH_CHECK_PATHS.has(state.path)) {
      // Health and seal status must answer from memory even when the database does not (load
      // balancers depend on it): their audit rows are written without holding the response,
      // and a failure is logged. They change nothing and return no secret.
      state.audited = true;
      ctx.adapter.audit.append(auditEntry(request, success, reply.statusCode, null)).catch((error: unknown) => {
        request.log.warn({ err: error, requestId: request.id }, "audit log write for a health check failed");
      });
      return payload;
    }
    try {
      await audit.append(auditEntry(request, success, reply.statusCode, success ? null : firstError(payload)));
      state.audited = true;
      return payload;
    } catch (error) {
      request.log.error({ err: error, requestId: request.id }, "audit log write failed; request refused");
      state.audited = true;
      const refused = auditFailureResponse(error);
      reply.code(refused.status).header("content-type", "application/json; charset=utf-8");
      return JSON.stringify({ errors: refused.errors });
    }
  });

  return app;
}

// The first message of an error response, for the audit row's error_message.
function firstError(payload: unknown): string | null {
  if (typeof payload !== "string") return null;
  try {
    const parsed = JSON.parse(payload) as { errors?: unknown };
    return Array.isArray(parsed.errors) && typeof parsed.errors[0] === "string" ? parsed.errors[0].slice(0, 500) : null;
  } catch {
    return null;
  }
}

/**
 * An HTTP or HTTPS server whose connections pass through {@link listMethodFilter}: Node's
 * HTTP parser rejects the `LIST` method that Vault clients use, so each connection's bytes
 * are rewritten (`LIST /v1/x` → `GET /v1/x?list=true`) before the parser sees them. Node's
 * own connection listener is kept and handed the filtered stream, so listen, close and
 * keep-alive handling stay Node's.
 */
function listMethodServer(handler: (request: never, response: never) => void, listener: ListenerConfig): Server {
  // Fastify's own timeout options do not reach a server made by serverFactory: they are set
  // here, so that a slow or idle client holds a connection only so long.
  const limits = {
    headersTimeout: listener.headerTimeoutMs,
    requestTimeout: listener.requestTimeoutMs,
    keepAliveTimeout: listener.idleTimeoutMs,
    // How often Node checks the two limits above (its default, 30 s, would let a request
    // overstay them by that much).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(listener.headerTimeoutMs / 4))),
  };
  const server = listener.tls
    ? createHttpsServer(
        {
          ...limits,
          handshakeTimeout: listener.headerTimeoutMs,
          cert: readFileSync(listener.tls.certFile),
          key: readFileSync(listener.tls.keyFile),
        },
        handler as never,
      )
    : createHttpServer(limits, handler as never);
  // Connections past the cap are closed as they arrive. A connection that sends nothing is
  // closed by headersTimeout too (Node counts it from the connection's start); a TLS one that
  // never finishes its handshake, by handshakeTimeout.
  server.maxConnections = listener.maxConnections;
  const event = listener.tls ? "secureConnection" : "connection";
  const [nodeListener] = server.listeners(event) as Array<(socket: unknown) => void>;
  if (nodeListener) {
    server.removeListener(event, nodeListener);
    server.on(event, (socket: Socket) => nodeListener.call(server, listMethodFilter(socket)));
  }
  return server as Server;
}
