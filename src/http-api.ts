import type { IncomingMessage, ServerResponse } from "node:http";
import { toJson } from "@bufbuild/protobuf";
import { Code, ConnectError, type Client } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJson } from "@connectrpc/connect/protocol-connect";
import type { Registry } from "prom-client";
import { UserSchema } from "../gen/users_types_pb.js";
import type { Users } from "../gen/users_pb.js";
import { ServingStatus, type HealthStatus } from "./health/health-status.js";
import type { Logger } from "./logger.js";

/** What the plain HTTP routes read from. */
export interface HttpApiOptions {
  readonly health: HealthStatus;
  /** Served at /metrics when present. */
  readonly metrics: Registry | undefined;
  /** A Users client on the server's own routes (same implementation and interceptors). */
  readonly users: Client<typeof Users>;
  readonly logger: Logger;
}

/** Serves one request if it is one of the plain HTTP routes; false leaves it to connect. */
export type HttpApi = (req: IncomingMessage, res: ServerResponse) => boolean;

/**
 * The plain HTTP routes of `--http-listen`, for people and probes rather
 * than RPC clients: `/healthz` (the process answers), `/readyz` (health
 * status of the whole server), `/metrics` (Prometheus), and `GET /users`
 * (the tutorial's Flask page: every user, or `?username=a&username=b`, as
 * NDJSON, one line per user as GetUsers streams it). Everything else is
 * Connect and gRPC-Web, served by connect.
 */
export function createHttpApi({ health, metrics, users, logger }: HttpApiOptions): HttpApi {
  const routes: Record<string, (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>> = {
    "/healthz": (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain; charset=utf-8" }).end("ok\n");
    },
    "/readyz": (_req, res) => {
      const status = health.get("") ?? ServingStatus.UNKNOWN;
      res
        .writeHead(status === ServingStatus.SERVING ? 200 : 503, { "content-type": "application/json" })
        .end(`${JSON.stringify({ status: ServingStatus[status] })}\n`);
    },
    "/metrics": async (_req, res) => {
      if (metrics === undefined) {
        res.writeHead(404).end();
        return;
      }
      const text = await metrics.metrics();
      res.writeHead(200, { "content-type": metrics.contentType }).end(text);
    },
    "/users": (req, res, url) => streamUsers(req, res, url),
  };

  async function streamUsers(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    const usernames = url.searchParams.getAll("username");
    let started = false;
    try {
      for await (const result of users.getUsers({ user: usernames.map((username) => ({ username })) }, { signal: abort.signal })) {
        if (!started) {
          res.writeHead(200, { "content-type": "application/x-ndjson" });
          started = true;
        }
        res.write(`${JSON.stringify(result.user === undefined ? {} : toJson(UserSchema, result.user))}\n`);
      }
      if (!started) res.writeHead(200, { "content-type": "application/x-ndjson" });
      res.end();
    } catch (e) {
      const err = ConnectError.from(e);
      if (abort.signal.aborted) return; // the client went away: nobody to tell
      logger.warn({ path: req.url, code: Code[err.code], message: err.rawMessage }, "GET /users failed");
      if (started) {
        // Headers are gone: the error is the last line, so the reader knows the list is incomplete.
        res.end(`${JSON.stringify({ error: errorToJson(err, undefined) })}\n`);
      } else {
        // The Connect protocol's status and error shape: {"code": "not_found", "message": "..."}.
        res.writeHead(codeToHttpStatus(err.code), { "content-type": "application/json" }).end(JSON.stringify(errorToJson(err, undefined)));
      }
    }
  }

  return (req, res) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = routes[url.pathname];
    if (route === undefined) return false;
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return true;
    }
    Promise.resolve(route(req, res, url)).catch((err: unknown) => {
      logger.error({ err, path: url.pathname }, "HTTP route failed");
      if (!res.headersSent) res.writeHead(500).end();
      else res.destroy();
    });
    return true;
  };
}
