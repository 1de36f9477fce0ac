import { once } from "node:events";
import type * as net from "node:net";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "../observability/logger.js";
import type { ConnectionTable } from "./connection-table.js";
import type { Http1Connections } from "./http1.js";
import type { Http2Sessions } from "./http2-sessions.js";

/** Everything a drain stops. */
export interface Drainable {
  readonly listeners: readonly net.Server[];
  readonly sessions: Http2Sessions;
  readonly http1: Http1Connections;
  /** Every connection still open, whatever its state (being sniffed, in a TLS handshake, HTTP/1.1). */
  readonly tables: readonly ConnectionTable[];
  /** Aborted when the grace period is over: the calls still running end with UNAVAILABLE. */
  readonly shutdown: AbortController;
  readonly logger: Logger;
}

// After the grace period, how long cut-off calls get to send their trailers
// before their connections are destroyed.
const abortFlushMs = 500;

/**
 * Graceful stop: stops accepting connections, sends GOAWAY on every open
 * one and lets in-flight calls finish. Calls still running after `graceMs`
 * are ended with UNAVAILABLE and their connections closed. Resolves once
 * every connection is gone; `forced` tells whether the grace period ran out.
 */
export async function drain(server: Drainable, graceMs: number): Promise<{ forced: boolean }> {
  const { listeners, sessions, logger } = server;
  const closed = Promise.all(listeners.map((l) => once(l, "close")));
  listeners.forEach((l) => l.close());
  sessions.drain();
  server.http1.drain();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
  const forced = await Promise.race([closed.then(() => false), expired]);
  clearTimeout(timer);
  if (forced) {
    logger.warn({ graceMs, openConnections: sessions.size }, "grace period over: ending the remaining calls");
    server.shutdown.abort(new ConnectError("server shutting down", Code.Unavailable));
    await Promise.race([closed, new Promise((r) => setTimeout(r, abortFlushMs))]);
    sessions.destroy();
    // Whatever is left: nothing may keep the process from exiting.
    for (const table of server.tables) {
      [...table.sockets()].forEach((socket) => socket.destroy());
    }
    await closed;
  }
  return { forced };
}
