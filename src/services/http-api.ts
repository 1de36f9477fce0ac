import type { IncomingMessage, ServerResponse } from "node:http";
import { setImmediate } from "node:timers/promises";
import { toJson } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError } from "@connectrpc/connect";
import { codeToHttpStatus, errorToJson } from "@connectrpc/connect/protocol-connect";
import type { Registry } from "prom-client";
import type { Users } from "../../gen/users_pb.js";
import { UserSchema } from "../../gen/users_types_pb.js";
import type { Logger } from "../observability/logger.js";
import type { RepeatLimitedLog } from "../observability/repeated-lines.js";
import { type HealthStatus, ServingStatus } from "./health/health-status.js";

// GET /users: lines written before the event loop gets a turn; listings at once.
const linesPerTurn = 64;
const maxListings = 8;

/** What the plain HTTP routes read from. */
export interface HttpApiOptions {
  readonly health: HealthStatus;
  /** Served at /metrics when present. */
  readonly metrics: Registry | undefined;
  /** A Users client on the server's own routes (same implementation and interceptors). */
  readonly users: Client<typeof Users>;
  readonly logger: Logger;
  /** Where refusals are logged, rate-limited. */
  readonly repeats: RepeatLimitedLog;
  /** The caller's address, for log lines. */
  readonly peerOf: (req: IncomingMessage) => string | undefined;
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
export function createHttpApi({ health, metrics, users, logger, repeats, peerOf }: HttpApiOptions): HttpApi {
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

  // Streams at the client's pace: the next user is read from the stream
  // only once the last line has been taken by the socket, and the stream
  // stops when the client leaves. (Writing regardless kept every line of
  // 200k users in memory for each client that did not read: 50 of them
  // took 2.7 GB and minutes of CPU, and starved every other call.) Every
  // few lines it lets the event loop serve others: a loopback socket takes
  // tens of MiB before it pushes back, and until then a listing would run
  // from one promise to the next without any I/O in between. At most
  // maxListings run at once; more get 503.
  let listings = 0;
  async function streamUsers(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (listings >= maxListings) {
      repeats.warn("GET /users refused", { listings, peer: peerOf(req) }, "GET /users refused: too many listings at once");
      res
        .writeHead(503, { "content-type": "application/json", "retry-after": "1" })
        .end(`${JSON.stringify({ code: "unavailable", message: "too many listings at once" })}\n`);
      return;
    }
    listings++;
    res.once("close", () => listings--);
    const abort = new AbortController();
    res.once("close", () => abort.abort());
    const usernames = url.searchParams.getAll("username");
    let started = false;
    let lines = 0;
    try {
      for await (const result of users.getUsers({ user: usernames.map((username) => ({ username })) }, { signal: abort.signal })) {
        if (!started) {
          res.writeHead(200, { "content-type": "application/x-ndjson" });
          started = true;
        }
        if (!res.write(`${JSON.stringify(result.user === undefined ? {} : toJson(UserSchema, result.user))}\n`)) {
          await drained(res, abort.signal);
        } else if (++lines % linesPerTurn === 0) {
          await setImmediate();
        }
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

// Resolves when `res` wants more, or when the client has gone (`gone` aborts).
function drained(res: ServerResponse, gone: AbortSignal): Promise<void> {
  if (gone.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      gone.removeEventListener("abort", done);
      resolve();
    };
    res.once("drain", done);
    gone.addEventListener("abort", done, { once: true });
  });
}
