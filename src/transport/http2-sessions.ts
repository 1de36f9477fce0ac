import * as http2 from "node:http2";
import type * as net from "node:net";
import type { Logger } from "../observability/logger.js";
import { runInTrace } from "../observability/trace-context.js";
import type { EmptyAuthorityFix } from "./h2/empty-authority.js";
import { type ConnectionLimits, capDeadline, http2Settings, superviseSession } from "./limits.js";
import type { ConnectionMemory, MemoryBudget } from "./memory-budget.js";
import { failHttp2, type RequestGuard } from "./request-guard.js";

/** What HTTP/2 serving needs from the server around it. */
export interface Http2Environment {
  readonly limits: ConnectionLimits;
  readonly logger: Logger;
  readonly guard: RequestGuard;
  readonly memory: MemoryBudget;
  /** A connection has completed a request (see connection-table.ts). */
  readonly served: (socket: net.Socket) => void;
}

/** Serves one checked stream (the fast path, else connect through node's compat layer). */
export type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * The HTTP/2 connections: one node:http2 server, which never listens, makes
 * a session of each connection the listeners hand over, and knows each
 * session's peer and memory account.
 */
export class Http2Sessions {
  readonly #h2: http2.Http2Server;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  readonly #peers = new WeakMap<http2.Http2Session, string | undefined>();
  readonly #memory = new WeakMap<http2.Http2Session, ConnectionMemory>();
  #connecting: { readonly socket: net.Socket; readonly peer: string | undefined } | undefined;
  #draining = false;

  constructor(
    private readonly env: Http2Environment,
    serve: StreamListener,
  ) {
    const { limits, logger, guard } = env;
    this.#h2 = http2.createServer({ settings: http2Settings(limits) });
    this.#h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
      if (!guard.http2(stream, headers)) {
        return;
      }
      if (limits.maxDeadlineMs > 0) {
        capDeadline(headers, limits.maxDeadlineMs);
      }
      try {
        runInTrace(headers, serve, stream, headers, flags, rawHeaders);
      } catch (err) {
        logger.error({ err, path: headers[":path"], peer: this.#peers.get(stream.session!) }, "request handler failed");
        failHttp2(stream);
      }
    });
    this.#h2.on("session", (session) => this.#opened(session));
  }

  /** Starts a session on `socket`, reading and writing through `stream` (the socket, or its empty-:authority wrapper). */
  handOver(socket: net.Socket, stream: net.Socket | EmptyAuthorityFix, peer: string | undefined): void {
    this.#connecting = { socket, peer };
    try {
      // Emitting "connection" creates the session synchronously (#opened).
      this.#h2.emit("connection", stream);
    } finally {
      this.#connecting = undefined;
    }
  }

  /** The caller's address of a session. */
  peerOf(session: http2.Http2Session | undefined): string | undefined {
    return session && this.#peers.get(session);
  }

  /** The memory account of a session. */
  memoryOf(session: http2.Http2Session | undefined): ConnectionMemory | undefined {
    return session && this.#memory.get(session);
  }

  /** Sessions open now. */
  get size(): number {
    return this.#sessions.size;
  }

  /** Sends every session a GOAWAY (in-flight calls go on); sessions made from now on get one at once. */
  drain(): void {
    this.#draining = true;
    this.#sessions.forEach((s) => s.close());
  }

  /** Destroys every session (after the grace period). */
  destroy(): void {
    this.#sessions.forEach((s) => s.destroy());
  }

  #opened(session: http2.ServerHttp2Session): void {
    const { socket, peer } = this.#connecting!;
    this.#sessions.add(session);
    this.#peers.set(session, peer);
    this.#memory.set(session, this.env.memory.connection());
    // The connection counts as served once one of its calls has ended.
    const firstCall = (stream: http2.ServerHttp2Stream) =>
      stream.once("close", () => {
        this.env.served(socket);
        session.off("stream", firstCall);
      });
    session.on("stream", firstCall);
    session.once("close", () => this.#sessions.delete(session));
    // Connection-level failures (resets, protocol errors) concern one peer only.
    session.on("error", (err) => this.env.logger.warn({ err, peer }, "http2 session error"));
    superviseSession(session, this.env.limits, this.env.logger, peer);
    if (this.#draining) {
      session.close();
    }
  }
}
