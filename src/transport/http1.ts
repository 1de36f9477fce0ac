import * as http from "node:http";
import type * as net from "node:net";
import type { Logger } from "../observability/logger.js";
import type { RepeatLimitedLog } from "../observability/repeated-lines.js";
import { runInTrace } from "../observability/trace-context.js";
import { type ConnectionLimits, capDeadline } from "./limits.js";
import { peerOf } from "./peer-address.js";
import { answerClientError, failHttp1, type RequestGuard } from "./request-guard.js";

/** What HTTP/1.1 serving needs from the server around it. */
export interface Http1Environment {
  readonly limits: ConnectionLimits;
  readonly logger: Logger;
  readonly repeats: RepeatLimitedLog;
  readonly guard: RequestGuard;
  /** A connection has completed a request (see connection-table.ts). */
  readonly served: (socket: net.Socket) => void;
  /** A connection is handed over (its memory account is opened). */
  readonly accepted: (socket: net.Socket) => void;
}

/**
 * HTTP/1.1 connections (plaintext clients without prior knowledge, TLS
 * clients that chose it by ALPN, the --http-listen addresses), served by
 * node:http servers that never listen: the listeners hand them their
 * sockets. Open requests are counted per connection for the drain.
 */
export class Http1Connections {
  readonly #open = new Map<net.Socket, number>();
  #draining = false;

  constructor(private readonly env: Http1Environment) {}

  /** A hand-over function for connections whose requests go to `serve`. */
  acceptor(serve: (req: http.IncomingMessage, res: http.ServerResponse) => void): (socket: net.Socket) => void {
    const { limits, logger, repeats } = this.env;
    const server = http.createServer(
      {
        maxHeaderSize: limits.maxHeaderListBytes,
        // A request's headers, and the whole request, must arrive within these.
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      },
      (req, res) => this.#request(req, res, serve),
    );
    // No bytes in either direction for this long: the connection is closed.
    server.timeout = limits.idleTimeoutMs;
    // node checks headersTimeout and requestTimeout only on connections of a
    // server that has emitted "listening" (it starts its checker then); this
    // one is handed its sockets and never listens, so without this a client
    // trickling a header byte a second was never closed.
    server.emit("listening");
    server.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => answerClientError(err, socket, repeats, peerOf(socket)));
    return (socket) => {
      logger.debug({ peer: peerOf(socket) }, "HTTP/1.1 connection accepted");
      this.env.accepted(socket);
      this.#open.set(socket, 0);
      socket.once("close", () => this.#open.delete(socket));
      server.emit("connection", socket);
      // The sniff paused the socket with its first bytes put back; node:http
      // does not resume a socket paused explicitly.
      socket.resume();
    };
  }

  /** Connections with no open request end now; the others after their last reply, which says "connection: close". */
  drain(): void {
    this.#draining = true;
    this.#open.forEach((open, socket) => {
      if (open === 0) socket.end();
    });
  }

  #request(req: http.IncomingMessage, res: http.ServerResponse, serve: (req: http.IncomingMessage, res: http.ServerResponse) => void): void {
    const { limits, logger, guard } = this.env;
    if (!guard.http1(req, res)) {
      return;
    }
    res.once("finish", () => this.env.served(req.socket));
    if (limits.maxDeadlineMs > 0) {
      capDeadline(req.headers, limits.maxDeadlineMs);
    }
    const socket = req.socket;
    this.#open.set(socket, (this.#open.get(socket) ?? 0) + 1);
    if (this.#draining) {
      res.setHeader("connection", "close");
    }
    res.once("close", () => {
      const open = this.#open.get(socket)! - 1;
      this.#open.set(socket, open);
      if (this.#draining && open === 0) socket.end();
    });
    try {
      runInTrace(req.headers, serve, req, res);
    } catch (err) {
      logger.error({ err, path: req.url, peer: peerOf(req.socket) }, "request handler failed");
      failHttp1(res);
    }
  }
}
