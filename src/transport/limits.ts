import type { IncomingHttpHeaders } from "node:http";
import type * as http2 from "node:http2";
import { parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "../observability/logger.js";
import type { MemoryBudgetLimits } from "./memory-budget.js";

/** Limits that keep one connection or call from holding the process's resources. */
export interface ConnectionLimits {
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls open at once on one connection. */
  readonly maxConcurrentStreams: number;
  /** HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: the largest request header list accepted. */
  readonly maxHeaderListBytes: number;
  /** A connection with no call open this long is closed with a GOAWAY; 0: never. */
  readonly idleTimeoutMs: number;
  /** A GOAWAY this long (+-10 %) after a connection opened, so that clients reconnect; 0: never. */
  readonly maxConnectionAgeMs: number;
  /** How long calls still open after that GOAWAY may run before the connection is closed; 0: no limit. */
  readonly maxConnectionAgeGraceMs: number;
  /** How often each connection is sent a PING; 0: never. */
  readonly keepaliveIntervalMs: number;
  /** A connection whose PING is not answered this soon is closed. */
  readonly keepaliveTimeoutMs: number;
  /** Deadline given to calls without one, and cap on longer ones; 0: none. */
  readonly maxDeadlineMs: number;
  /** Connections open at once, per group of listeners (RPC ports; --http-listen); see connection-table.ts. */
  readonly maxConnections: number;
  /** HTTP/1.1: a request's headers must have arrived this long after it began. */
  readonly headersTimeoutMs: number;
  /** HTTP/1.1: the whole request must have arrived this long after it began. */
  readonly requestTimeoutMs: number;
  /** What requests and unsent replies may hold, per connection and in all (transport/memory-budget.ts). */
  readonly memory: MemoryBudgetLimits;
}

/**
 * Defaults for a gateway plugin server: Tyk multiplexes every call of a
 * gateway on one connection, so the stream cap is generous; pings find dead
 * peers within about 80 s; long streams (health Watch) are not cut off.
 */
export const defaultLimits: ConnectionLimits = {
  maxConcurrentStreams: 1000,
  maxHeaderListBytes: 64 * 1024,
  idleTimeoutMs: 10 * 60_000,
  maxConnectionAgeMs: 0,
  maxConnectionAgeGraceMs: 0,
  keepaliveIntervalMs: 60_000,
  keepaliveTimeoutMs: 20_000,
  maxDeadlineMs: 0,
  maxConnections: 4096,
  headersTimeoutMs: 20_000,
  requestTimeoutMs: 300_000,
  memory: { processBytes: 256 * 2 ** 20, connectionBytes: 128 * 2 ** 20 },
};

/** The HTTP/2 settings the server announces for these limits. */
export function http2Settings(limits: ConnectionLimits): http2.Settings {
  return { maxConcurrentStreams: limits.maxConcurrentStreams, maxHeaderListSize: limits.maxHeaderListBytes };
}

/**
 * Applies the idle timeout and keepalive pings to one HTTP/2 session. Why
 * both: the idle timeout frees connections nobody uses (a gateway that went
 * away cleanly reconnects on its next call), and the pings find peers that
 * vanished without closing (a dead host, a dropped NAT entry), whose
 * sockets would otherwise stay open for ever, calls and all.
 */
export function superviseSession(session: http2.ServerHttp2Session, limits: ConnectionLimits, logger: Logger, peer: string | undefined): void {
  let idle: NodeJS.Timeout | undefined;
  let aged: NodeJS.Timeout | undefined;
  let pinger: NodeJS.Timeout | undefined;
  let unanswered: NodeJS.Timeout | undefined;
  if (limits.idleTimeoutMs > 0) {
    let open = 0;
    // One timer per session, restarted each time its last open call ends; if
    // it fires while a call is open, the next end restarts it. (Not a new
    // timer at each such moment: under load that is many times a second.)
    const timer = setTimeout(() => {
      if (open === 0) {
        logger.debug({ peer, idleTimeoutMs: limits.idleTimeoutMs }, "idle connection: closing it");
        session.close();
      }
    }, limits.idleTimeoutMs).unref();
    idle = timer;
    // One listener function per session, not a closure per stream: this runs for every call.
    const streamClosed = () => {
      if (--open === 0 && !session.closed) timer.refresh();
    };
    session.on("stream", (stream: http2.ServerHttp2Stream) => {
      open++;
      stream.on("close", streamClosed);
    });
  }
  if (limits.keepaliveIntervalMs > 0) {
    pinger = setInterval(() => {
      if (unanswered !== undefined || session.closed || session.destroyed) return; // one PING out at a time
      const timer = setTimeout(() => {
        logger.warn({ peer, keepaliveTimeoutMs: limits.keepaliveTimeoutMs }, "keepalive ping not answered: closing the connection");
        session.destroy();
      }, limits.keepaliveTimeoutMs).unref();
      unanswered = timer;
      // The callback also runs (with an error) when the session closes first.
      session.ping(() => {
        clearTimeout(timer);
        unanswered = undefined;
      });
    }, limits.keepaliveIntervalMs).unref();
  }
  if (limits.maxConnectionAgeMs > 0) {
    aged = setTimeout(() => ageOut(session, limits.maxConnectionAgeGraceMs, logger, peer), jittered(limits.maxConnectionAgeMs)).unref();
  }
  session.once("close", () => {
    clearTimeout(idle);
    clearTimeout(aged);
    clearInterval(pinger);
    clearTimeout(unanswered);
  });
}

// grpc-go's MAX_CONNECTION_AGE jitter: +-10 %, so that connections opened
// together (a gateway fleet restarting) do not all reconnect at once.
function jittered(ms: number): number {
  return ms * (0.9 + Math.random() * 0.2);
}

/**
 * The end of a connection's age, as grpc-go's server does it: a GOAWAY
 * (NO_ERROR, last stream id = the last call accepted), so the client opens
 * a new connection for its next call (a call it sent meanwhile above that
 * id was never seen, and HTTP/2 lets it retry it safely); calls in flight
 * finish, cut off only when a grace period is set and runs out.
 */
function ageOut(session: http2.ServerHttp2Session, graceMs: number, logger: Logger, peer: string | undefined): void {
  if (session.closed || session.destroyed) return;
  logger.debug({ peer, graceMs }, "connection reached --max-connection-age: GOAWAY");
  session.close();
  if (graceMs > 0) {
    const timer = setTimeout(() => {
      logger.info({ peer, graceMs }, "calls still open after --max-connection-age-grace: closing the connection");
      session.destroy();
    }, graceMs).unref();
    session.once("close", () => clearTimeout(timer));
  }
}

/**
 * Gives a call the deadline cap when it has no deadline or a longer one, by
 * rewriting its timeout header before any protocol handler reads it, so
 * every path (fast path, connect over HTTP/2 and HTTP/1.1) sees the same
 * deadline and answers DEADLINE_EXCEEDED in its own way. A malformed
 * timeout is left alone: it is refused as it would be without the cap.
 */
export function capDeadline(headers: IncomingHttpHeaders, maxDeadlineMs: number): void {
  // connect's own parsers, so "malformed" means what it means to connect.
  if ((headers["content-type"] ?? "").startsWith("application/grpc")) {
    const { timeoutMs, error } = parseGrpcTimeout(stringHeader(headers["grpc-timeout"]), Number.MAX_SAFE_INTEGER);
    if (error !== undefined || (timeoutMs !== undefined && timeoutMs <= maxDeadlineMs)) return;
    // At most 8 digits: milliseconds up to about 27 hours, then seconds.
    headers["grpc-timeout"] = maxDeadlineMs <= 99_999_999 ? `${maxDeadlineMs}m` : `${Math.ceil(maxDeadlineMs / 1000)}S`;
    return;
  }
  const { timeoutMs, error } = parseConnectTimeout(stringHeader(headers["connect-timeout-ms"]), Number.MAX_SAFE_INTEGER);
  if (error !== undefined || (timeoutMs !== undefined && timeoutMs <= maxDeadlineMs)) return;
  headers["connect-timeout-ms"] = String(maxDeadlineMs);
}

function stringHeader(value: string | string[] | undefined): string | null {
  return typeof value === "string" ? value : null;
}
