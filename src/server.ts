import * as http2 from "node:http2";
import * as net from "node:net";
import { once, setMaxListeners } from "node:events";
import { Code, ConnectError, createContextValues, type ServiceImplSpec } from "@connectrpc/connect";
import { compressionBrotli, compressionGzip, connectNodeAdapter } from "@connectrpc/connect-node";
import { createGrpcUnaryFastPath } from "./fast-path/grpc-unary.js";
import { endStreamsOnAbort } from "./interceptors/end-streams-on-abort.js";
import { rejectExpiredDeadline } from "./interceptors/expired-deadline.js";
import { loggingInterceptor } from "./interceptors/logging.js";
import { formatListenAddress, type ListenAddress } from "./listen-address.js";
import type { Logger } from "./logger.js";
import { kPeer, kServedBy } from "./peer.js";
import { registerServices } from "./routes.js";
import { sniffFirstRequest } from "./authority-sniff.js";
import { EmptyAuthorityFix } from "./empty-authority.js";
import { unknownMethod } from "./unknown-method.js";
import { prepareSocketPath } from "./unix-socket.js";

/** How to build and bind the server. */
export interface ServerOptions {
  readonly listen: readonly ListenAddress[];
  /** The service implementations to serve (routes.ts). */
  readonly services: readonly ServiceImplSpec[];
  readonly logger: Logger;
  /** Largest request message; larger ones get RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  /** Serve requests with an empty `:authority` (Tyk <= 5.8.2 without grpc_authority); see empty-authority.ts. */
  readonly acceptEmptyAuthority: boolean;
  /** Serve unary gRPC calls on the lean path (fast-path/); off: connect serves everything. */
  readonly fastPath: boolean;
  /** Clear stale unix socket files before listening (default true; see unix-socket.ts). */
  readonly prepareUnixSockets?: boolean;
}

/** A bound server. */
export interface RunningServer {
  /** The addresses actually bound (port 0 resolved to the real port). */
  readonly addresses: readonly ListenAddress[];
  /**
   * Graceful stop: stops accepting connections, sends GOAWAY on every open
   * one and lets in-flight calls finish. Calls still running after `graceMs`
   * are ended with UNAVAILABLE and their connections closed. Resolves once
   * every connection is gone; `forced` tells whether the grace period ran out.
   */
  drain(graceMs: number): Promise<{ forced: boolean }>;
}

// How long a new connection may take to send its first request's headers
// before it is served through the empty-:authority wrapper anyway.
const sniffWaitMs = 1000;

// A connection reset while its first request is being looked at concerns nobody else.
const ignoreSniffError = () => undefined;

// After the grace period, how long cut-off calls get to send their trailers
// before their connections are destroyed.
const abortFlushMs = 500;

/**
 * Serves the routes over h2c (HTTP/2 without TLS, what Tyk Gateway dials) on
 * every listen address. gRPC, gRPC-Web and Connect are all served.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger } = options;
  const shutdown = new AbortController();
  // Every in-flight call links its own signal to this one (connect-node), so
  // hundreds of listeners at once is normal here, not a leak.
  setMaxListeners(0, shutdown.signal);
  // Logging first: it is the outermost, so it sees what the caller gets.
  const interceptors = [loggingInterceptor(logger), endStreamsOnAbort];
  const acceptCompression = [compressionGzip, compressionBrotli]; // connect-node's default
  const handler = connectNodeAdapter({
    routes: registerServices(options.services),
    readMaxBytes: options.maxMessageBytes,
    acceptCompression,
    interceptors,
    requestGate: rejectExpiredDeadline,
    shutdownSignal: shutdown.signal,
    fallback: unknownMethod,
    contextValues: (req) => createContextValues().set(kPeer, "stream" in req ? peers.get(req.stream.session!) : peerOf(req.socket)),
  });
  const fastPath = options.fastPath
    ? createGrpcUnaryFastPath({
        services: options.services,
        interceptors,
        requestGate: rejectExpiredDeadline,
        readMaxBytes: options.maxMessageBytes,
        acceptCompression,
        compressMinBytes: 1024, // connect's default
        shutdownSignal: shutdown.signal,
        contextValues: (stream) => createContextValues().set(kPeer, peers.get(stream.session!)).set(kServedBy, "fast-path"),
        logger,
      })
    : undefined;
  // node's compatibility layer (Http2ServerRequest/Response) for connect,
  // on a server that never listens: streams the fast path does not take are
  // handed to it exactly as node would hand them over itself.
  const compat = http2.createServer(handler);

  // One HTTP/2 server makes the sessions; plain net listeners accept the
  // connections and hand them over, wrapped when empty :authority must pass.
  const h2 = http2.createServer();
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (fastPath === undefined || !fastPath(stream, headers)) {
      compat.emit("stream", stream, headers, flags, rawHeaders);
    }
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  const peers = new WeakMap<http2.Http2Session, string | undefined>();
  let connectingPeer: string | undefined;
  let draining = false;
  h2.on("session", (session) => {
    sessions.add(session);
    peers.set(session, connectingPeer);
    session.once("close", () => sessions.delete(session));
    // Connection-level failures (resets, protocol errors) concern one peer only.
    session.on("error", (err) => logger.warn({ err, peer: peers.get(session) }, "http2 session error"));
    if (draining) {
      session.close();
    }
  });
  const handOver = (socket: net.Socket, stream: net.Socket | EmptyAuthorityFix) => {
    connectingPeer = peerOf(socket);
    // Emitting "connection" creates the session synchronously ("session" above).
    h2.emit("connection", stream);
    connectingPeer = undefined;
  };
  const accept = (socket: net.Socket) => {
    if (!options.acceptEmptyAuthority) {
      handOver(socket, socket);
      return;
    }
    // Only connections whose first request has an empty :authority pay for
    // the rewriting wrapper; see authority-sniff.ts.
    socket.on("error", ignoreSniffError);
    sniffFirstRequest(socket, sniffWaitMs).then(({ authorityOk, settingsAckPending }) => {
      socket.off("error", ignoreSniffError);
      if (socket.destroyed) {
        return;
      }
      logger.debug({ peer: peerOf(socket), rewriteAuthority: !authorityOk }, "connection accepted");
      handOver(socket, authorityOk ? socket : new EmptyAuthorityFix(socket, { dropSettingsAck: settingsAckPending }));
    });
  };
  const listeners: net.Server[] = [];
  const addresses: ListenAddress[] = [];
  for (const address of options.listen) {
    const listener = net.createServer(accept);
    addresses.push(await listen(listener, address, logger, options.prepareUnixSockets ?? true));
    listeners.push(listener);
  }

  return {
    addresses,
    async drain(graceMs) {
      draining = true;
      const closed = Promise.all(listeners.map((l) => once(l, "close")));
      listeners.forEach((l) => l.close());
      sessions.forEach((s) => s.close());
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
      const forced = await Promise.race([closed.then(() => false), expired]);
      clearTimeout(timer);
      if (forced) {
        logger.warn({ graceMs, openConnections: sessions.size }, "grace period over: ending the remaining calls");
        shutdown.abort(new ConnectError("server shutting down", Code.Unavailable));
        await Promise.race([closed, new Promise((r) => setTimeout(r, abortFlushMs))]);
        sessions.forEach((s) => s.destroy());
        await closed;
      }
      return { forced };
    },
  };
}

async function listen(server: net.Server, address: ListenAddress, logger: Logger, prepareUnixSocket: boolean): Promise<ListenAddress> {
  const bind = (options: { host: string; port: number } | { path: string }) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options, () => {
        server.off("error", reject);
        resolve();
      });
    });
  if (address.kind === "unix") {
    if (prepareUnixSocket) {
      await prepareSocketPath(address.path, logger);
    }
    await bind({ path: address.path });
    return address;
  }
  try {
    await bind({ host: address.host, port: address.port });
  } catch (e) {
    // The default "::" fails on hosts without IPv6; all IPv4 interfaces is what was meant.
    if (address.host !== "::" || (e as NodeJS.ErrnoException).code !== "EAFNOSUPPORT") {
      throw e;
    }
    logger.warn("IPv6 is not available: listening on 0.0.0.0 instead of [::]");
    await bind({ host: "0.0.0.0", port: address.port });
  }
  const bound = server.address();
  if (bound === null || typeof bound === "string") {
    throw new Error(`no TCP address after listening on ${formatListenAddress(address)}`);
  }
  return { kind: "tcp", host: bound.address, port: bound.port };
}

function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined } | undefined): string | undefined {
  if (socket?.remoteAddress === undefined) {
    return undefined; // unix socket peers have no address
  }
  return formatListenAddress({ kind: "tcp", host: socket.remoteAddress, port: socket.remotePort ?? 0 });
}
