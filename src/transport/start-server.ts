import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type * as tls from "node:tls";
import { once, setMaxListeners } from "node:events";
import { Code, ConnectError, createClient, createContextValues, createRouterTransport, type ServiceImplSpec } from "@connectrpc/connect";
import { Users } from "../../gen/users_pb.js";
import { HealthStatus } from "../services/health/health-status.js";
import { createHttpApi } from "../services/http-api.js";
import type { ServerMetrics } from "../observability/metrics.js";
import { runInTrace } from "../observability/trace-context.js";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { createGrpcUnaryFastPath } from "../rpc/fast-path/grpc-unary.js";
import { http2CompatResponse } from "./h2/forbidden-fields.js";
import { encodableErrorsInterceptor } from "../rpc/interceptors/encodable-errors.js";
import { endStreamsOnAbort } from "../rpc/interceptors/end-streams-on-abort.js";
import { rejectExpiredDeadline } from "../rpc/interceptors/expired-deadline.js";
import { loggingInterceptor } from "../rpc/interceptors/logging.js";
import { kReached, markReached, refusedCallLog } from "../rpc/interceptors/refused-calls.js";
import { formatListenAddress, type ListenAddress } from "./listen-address.js";
import type { Logger } from "../observability/logger.js";
import { kPeer, kServedBy } from "../rpc/peer.js";
import { registerServices } from "../app/routes.js";
import { sniffFirstRequest } from "./h2/authority-sniff.js";
import { EmptyAuthorityFix } from "./h2/empty-authority.js";
import { unknownMethod } from "../rpc/unknown-method.js";
import { prepareSocketPath, secureSocketFile, socketUmask } from "./unix-socket.js";
import { capDeadline, defaultLimits, http2Settings, superviseSession, type ConnectionLimits } from "./limits.js";
import { createTlsListener, loadTls, type CertificateInfo, type TlsFiles } from "./tls.js";
import { RepeatLimitedLog } from "../observability/repeated-lines.js";
import { answerClientError, createRequestGuard, failHttp1, failHttp2 } from "./request-guard.js";
import { ConnectionTable } from "./connection-table.js";
import { chargeRequests } from "./charged-requests.js";
import { compressions } from "./compression.js";
import { MemoryBudget, type ConnectionMemory } from "./memory-budget.js";

/** How to build and bind the server. */
export interface ServerOptions {
  /** Plaintext listeners: h2c (prior knowledge, what Tyk dials), and HTTP/1.1 for Connect and gRPC-Web. */
  readonly listen: readonly ListenAddress[];
  /** TLS listeners (h2 or HTTP/1.1 by ALPN); need `tls`. */
  readonly tlsListen?: readonly ListenAddress[];
  readonly tls?: TlsFiles | undefined;
  /** Plain HTTP/1.1 listeners: Connect and gRPC-Web, plus /healthz, /readyz, /metrics and GET /users (http-api.ts). */
  readonly httpListen?: readonly ListenAddress[];
  /** Read by /readyz. */
  readonly health?: HealthStatus;
  /** Prometheus metrics: counted by an interceptor on every path, served at /metrics. */
  readonly metrics?: ServerMetrics;
  /** Connection and call limits (default: defaultLimits). */
  readonly limits?: ConnectionLimits;
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
  /** The group of unix socket files (name or id); their mode is always 0660. */
  readonly unixSocketGroup?: string | undefined;
}

/** A bound server. */
export interface RunningServer {
  /** The plaintext addresses actually bound (port 0 resolved to the real port). */
  readonly addresses: readonly ListenAddress[];
  /** The TLS addresses actually bound. */
  readonly tlsAddresses: readonly ListenAddress[];
  /** The --http-listen addresses actually bound. */
  readonly httpAddresses: readonly ListenAddress[];
  /**
   * Graceful stop: stops accepting connections, sends GOAWAY on every open
   * one and lets in-flight calls finish. Calls still running after `graceMs`
   * are ended with UNAVAILABLE and their connections closed. Resolves once
   * every connection is gone; `forced` tells whether the grace period ran out.
   */
  drain(graceMs: number): Promise<{ forced: boolean }>;
  /**
   * Re-reads the TLS files for new connections; open ones keep theirs.
   * Throws (keeping the old certificate) when the files are unusable;
   * returns undefined when there are no TLS listeners.
   */
  reloadTls(): CertificateInfo | undefined;
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
 * Serves the routes over h2c (HTTP/2 without TLS, what Tyk Gateway dials) and
 * HTTP/1.1 on every plaintext listen address, and over TLS on the TLS ones.
 * gRPC, gRPC-Web and Connect are all served.
 */
export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const { logger, limits = defaultLimits } = options;
  const tlsListen = options.tlsListen ?? [];
  if (tlsListen.length > 0 && options.tls === undefined) {
    throw new Error("TLS listeners need certificate files");
  }
  // Read before binding anything: unusable files stop the start.
  let loadedTls = options.tls && loadTls(options.tls);
  const shutdown = new AbortController();
  // Every in-flight call links its own signal to this one (connect-node), so
  // hundreds of listeners at once is normal here, not a leak.
  setMaxListeners(0, shutdown.signal);
  // Metrics outermost, so they count every call whatever happens inside;
  // then logging, which sees what the caller gets.
  // endStreamsOnAbort acts on streaming calls only, which the fast path never
  // serves; every other interceptor goes in both paths' lists.
  const unaryInterceptors = [...(options.metrics ? [options.metrics.interceptor] : []), loggingInterceptor(logger)];
  const interceptors = [...unaryInterceptors, endStreamsOnAbort];
  // connect-node's gzip and brotli, with decompression counted against the memory budget.
  const acceptCompression = [...compressions];
  const memory = new MemoryBudget(limits.memory);
  const sessionMemory = new WeakMap<http2.Http2Session, ConnectionMemory>();
  const socketMemory = new WeakMap<net.Socket, ConnectionMemory>();
  const callPeer = (req: http.IncomingMessage | http2.Http2ServerRequest) => ("stream" in req ? peers.get(req.stream.session!) : peerOf(req.socket));
  // Lines a caller can cause once per request are rate-limited per kind.
  const repeats = new RepeatLimitedLog(logger);
  const guard = createRequestGuard(repeats, { socket: peerOf, session: (session) => peers.get(session) });
  const refused = refusedCallLog(repeats, callPeer);
  const connectHandler = refused.wrap(
    connectNodeAdapter({
      routes: registerServices(options.services),
      readMaxBytes: options.maxMessageBytes,
      acceptCompression,
      // Outermost: the fast path applies encodableError itself, where it writes the status.
      interceptors: [encodableErrorsInterceptor(logger), markReached, ...interceptors],
      requestGate: rejectExpiredDeadline,
      shutdownSignal: shutdown.signal,
      fallback: unknownMethod,
      contextValues: (req) => createContextValues().set(kPeer, callPeer(req)).set(kReached, refused.marker(req)),
    }),
  );
  const handler = chargeRequests(
    connectHandler,
    (req) => ("stream" in req ? req.stream.session && sessionMemory.get(req.stream.session) : socketMemory.get(req.socket)),
    (req, reason) => repeats.warn("reply refused", { path: req.url, protocol: req.headers["content-type"], reason, peer: callPeer(req) }, "reply refused: the call is reset"),
  );
  const fastPath = options.fastPath
    ? createGrpcUnaryFastPath({
        services: options.services,
        interceptors: unaryInterceptors,
        requestGate: rejectExpiredDeadline,
        readMaxBytes: options.maxMessageBytes,
        acceptCompression,
        compressMinBytes: 1024, // connect's default
        shutdownSignal: shutdown.signal,
        contextValues: (session) => createContextValues().set(kPeer, session && peers.get(session)).set(kServedBy, "fast-path"),
        logger,
        repeats,
        connectionMemory: (session) => session && sessionMemory.get(session),
      })
    : undefined;
  // node's compatibility layer (Http2ServerRequest/Response) for connect,
  // on a server that never listens: streams the fast path does not take are
  // handed to it exactly as node would hand them over itself.
  const compat = http2.createServer({ Http2ServerResponse: http2CompatResponse(logger) }, handler);

  // One HTTP/2 server makes the sessions; plain net listeners accept the
  // connections and hand them over, wrapped when empty :authority must pass.
  const h2 = http2.createServer({ settings: http2Settings(limits) });
  const serveStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (fastPath === undefined || !fastPath(stream, headers)) {
      compat.emit("stream", stream, headers, flags, rawHeaders);
    }
  };
  h2.on("stream", (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (!guard.http2(stream, headers)) {
      return;
    }
    if (limits.maxDeadlineMs > 0) {
      capDeadline(headers, limits.maxDeadlineMs);
    }
    try {
      runInTrace(headers, serveStream, stream, headers, flags, rawHeaders);
    } catch (err) {
      logger.error({ err, path: headers[":path"], peer: peers.get(stream.session!) }, "request handler failed");
      failHttp2(stream);
    }
  });
  const sessions = new Set<http2.ServerHttp2Session>();
  const peers = new WeakMap<http2.Http2Session, string | undefined>();
  let connectingPeer: string | undefined;
  let connectingSocket: net.Socket | undefined;
  let draining = false;
  // Open connections, capped per group of listeners: the RPC ports (h2c and
  // TLS) and --http-listen, so that a flood of one cannot lock out the
  // other (health probes use either).
  const rpcConnections = new ConnectionTable("--listen/--tls-listen", limits.maxConnections, repeats, peerOf);
  const httpConnections = new ConnectionTable("--http-listen", limits.maxConnections, repeats, peerOf);
  const served = (socket: net.Socket) => {
    const raw = rawSocketOf(socket);
    rpcConnections.served(raw);
    httpConnections.served(raw);
  };
  h2.on("session", (session) => {
    sessions.add(session);
    peers.set(session, connectingPeer);
    sessionMemory.set(session, memory.connection());
    // The connection counts as served once one of its calls has ended.
    const socket = connectingSocket!;
    const firstCall = (stream: http2.ServerHttp2Stream) =>
      stream.once("close", () => {
        served(socket);
        session.off("stream", firstCall);
      });
    session.on("stream", firstCall);
    session.once("close", () => sessions.delete(session));
    // Connection-level failures (resets, protocol errors) concern one peer only.
    session.on("error", (err) => logger.warn({ err, peer: peers.get(session) }, "http2 session error"));
    superviseSession(session, limits, logger, connectingPeer);
    if (draining) {
      session.close();
    }
  });

  // HTTP/1.1 connections (plaintext clients without prior knowledge, TLS
  // clients that chose it by ALPN, the --http-listen addresses) go to
  // node:http servers that never listen either. Open requests are counted
  // per connection for the drain.
  const http1Open = new Map<net.Socket, number>();
  const http1Server = (serve: (req: http.IncomingMessage, res: http.ServerResponse) => void) => {
    const server = http.createServer(
      {
        maxHeaderSize: limits.maxHeaderListBytes,
        // A request's headers, and the whole request, must arrive within these.
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
      },
      (req, res) => {
        if (!guard.http1(req, res)) {
          return;
        }
        res.once("finish", () => served(req.socket));
        if (limits.maxDeadlineMs > 0) {
          capDeadline(req.headers, limits.maxDeadlineMs);
        }
        const socket = req.socket;
        http1Open.set(socket, (http1Open.get(socket) ?? 0) + 1);
        if (draining) {
          res.setHeader("connection", "close");
        }
        res.once("close", () => {
          const open = http1Open.get(socket)! - 1;
          http1Open.set(socket, open);
          if (draining && open === 0) socket.end();
        });
        try {
          runInTrace(req.headers, serve, req, res);
        } catch (err) {
          logger.error({ err, path: req.url, peer: peerOf(req.socket) }, "request handler failed");
          failHttp1(res);
        }
      },
    );
    // No bytes in either direction for this long: the connection is closed.
    server.timeout = limits.idleTimeoutMs;
    // node checks headersTimeout and requestTimeout only on connections of a
    // server that has emitted "listening" (it starts its checker then); this
    // one is handed its sockets and never listens, so without this a client
    // trickling a header byte a second was never closed.
    server.emit("listening");
    server.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => answerClientError(err, socket, repeats, peerOf(socket)));
    return (socket: net.Socket) => {
      logger.debug({ peer: peerOf(socket) }, "HTTP/1.1 connection accepted");
      socketMemory.set(socket, memory.connection());
      http1Open.set(socket, 0);
      socket.once("close", () => http1Open.delete(socket));
      server.emit("connection", socket);
      // The sniff paused the socket with its first bytes put back; node:http
      // does not resume a socket paused explicitly.
      socket.resume();
    };
  };
  const handOverHttp1 = http1Server(handler);
  // --http-listen: the plain HTTP routes first, then Connect and gRPC-Web.
  const httpListen = options.httpListen ?? [];
  const api =
    httpListen.length > 0
      ? createHttpApi({
          health: options.health ?? new HealthStatus([]),
          metrics: options.metrics?.registry,
          users: createClient(Users, createRouterTransport(registerServices(options.services), { router: { interceptors } })),
          logger,
          repeats,
          peerOf: (req) => peerOf(req.socket),
        })
      : undefined;
  const handOverApi = http1Server((req, res) => {
    if (!api!(req, res)) handler(req, res);
  });
  const handOver = (socket: net.Socket, stream: net.Socket | EmptyAuthorityFix) => {
    connectingPeer = peerOf(socket);
    connectingSocket = socket;
    // Emitting "connection" creates the session synchronously ("session" above).
    h2.emit("connection", stream);
    connectingPeer = undefined;
    connectingSocket = undefined;
  };
  const accept = (socket: net.Socket) => {
    // HTTP/1.1 or HTTP/2 by the first bytes; and only connections whose first
    // request has an empty :authority pay for the rewriting wrapper (see
    // authority-sniff.ts).
    socket.on("error", ignoreSniffError);
    sniffFirstRequest(socket, sniffWaitMs, options.acceptEmptyAuthority).then(({ http1, authorityOk, settingsAckPending }) => {
      socket.off("error", ignoreSniffError);
      if (socket.destroyed) {
        logger.debug({ peer: peerOf(socket) }, "connection closed before its first request");
        return;
      }
      if (http1) {
        handOverHttp1(socket);
        return;
      }
      const rewrite = options.acceptEmptyAuthority && !authorityOk;
      logger.debug({ peer: peerOf(socket), rewriteAuthority: rewrite }, "connection accepted");
      handOver(socket, rewrite ? new EmptyAuthorityFix(socket, { dropSettingsAck: settingsAckPending }) : socket);
    });
  };
  const acceptTls = (socket: tls.TLSSocket) => {
    if (socket.alpnProtocol === "h2") {
      handOver(socket, socket);
    } else {
      handOverHttp1(socket);
    }
  };
  const listeners: net.Server[] = [];
  const tlsListeners: tls.Server[] = [];
  const addresses: ListenAddress[] = [];
  const tlsAddresses: ListenAddress[] = [];
  const httpAddresses: ListenAddress[] = [];
  try {
    for (const address of options.listen) {
      const listener = net.createServer((socket) => rpcConnections.admit(socket) && accept(socket));
      listeners.push(listener);
      addresses.push(await listen(listener, address, logger, options.prepareUnixSockets ?? true, options.unixSocketGroup));
    }
    for (const address of httpListen) {
      const listener = net.createServer((socket) => httpConnections.admit(socket) && handOverApi(socket));
      listeners.push(listener);
      httpAddresses.push(await listen(listener, address, logger, options.prepareUnixSockets ?? true, options.unixSocketGroup));
    }
    for (const address of tlsListen) {
      // Before the TLS server's own listener: a refused socket is never wrapped.
      const listener = createTlsListener(options.tls!, loadedTls!).prependListener("connection", (socket: net.Socket) => rpcConnections.admit(socket));
      listener.on("secureConnection", acceptTls);
      // Failed handshakes (no client certificate, an unknown CA, not TLS at all) concern one peer.
      listener.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) =>
        logger.warn({ peer: peerOf(socket), code: err.code, reason: err.message }, "TLS handshake failed"),
      );
      listeners.push(listener);
      tlsListeners.push(listener);
      tlsAddresses.push(await listen(listener, address, logger, options.prepareUnixSockets ?? true, options.unixSocketGroup));
    }
  } catch (e) {
    listeners.forEach((l) => l.close());
    throw e;
  }
  if (loadedTls !== undefined) {
    logger.info({ addresses: tlsAddresses.map(formatListenAddress), mutual: options.tls?.clientCaFile !== undefined, ...loadedTls.certificate }, "TLS certificate loaded");
  }

  return {
    addresses,
    tlsAddresses,
    httpAddresses,
    reloadTls() {
      if (options.tls === undefined) {
        return undefined;
      }
      loadedTls = loadTls(options.tls);
      tlsListeners.forEach((l) => l.setSecureContext(loadedTls!.context));
      return loadedTls.certificate;
    },
    async drain(graceMs) {
      draining = true;
      const closed = Promise.all(listeners.map((l) => once(l, "close")));
      listeners.forEach((l) => l.close());
      sessions.forEach((s) => s.close());
      http1Open.forEach((open, socket) => {
        if (open === 0) socket.end();
      });
      let timer: NodeJS.Timeout | undefined;
      const expired = new Promise<true>((resolve) => (timer = setTimeout(() => resolve(true), graceMs)));
      const forced = await Promise.race([closed.then(() => false), expired]);
      clearTimeout(timer);
      if (forced) {
        logger.warn({ graceMs, openConnections: sessions.size }, "grace period over: ending the remaining calls");
        shutdown.abort(new ConnectError("server shutting down", Code.Unavailable));
        await Promise.race([closed, new Promise((r) => setTimeout(r, abortFlushMs))]);
        sessions.forEach((s) => s.destroy());
        // Whatever is left (connections still being looked at, TLS
        // handshakes, HTTP/1.1): nothing may keep the process from exiting.
        for (const table of [rpcConnections, httpConnections]) {
          [...table.sockets()].forEach((socket) => socket.destroy());
        }
        await closed;
      }
      repeats.flush();
      return { forced };
    },
  };
}

async function listen(server: net.Server, address: ListenAddress, logger: Logger, prepareUnixSocket: boolean, socketGroup?: string): Promise<ListenAddress> {
  const bind = (options: { host: string; port: number } | { path: string }, umask?: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // The socket file is created inside listen() itself (in this process;
      // under --workers the primary binds and the mode is set just after).
      const previous = umask === undefined ? undefined : process.umask(umask);
      try {
        server.listen(options, () => {
          server.off("error", reject);
          resolve();
        });
      } finally {
        if (previous !== undefined) process.umask(previous);
      }
    });
  if (address.kind === "unix") {
    if (prepareUnixSocket) {
      await prepareSocketPath(address.path, logger);
    }
    await bind({ path: address.path }, socketUmask);
    secureSocketFile(address.path, socketGroup);
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

// The TCP socket under a TLS one (what the connection tables hold). If node
// ever drops this internal field, TLS connections simply count as never
// served: the first to be closed at the connection cap.
function rawSocketOf(socket: net.Socket): net.Socket {
  return (socket as net.Socket & { _parent?: net.Socket })._parent ?? socket;
}

function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined } | undefined): string | undefined {
  if (socket?.remoteAddress === undefined) {
    return undefined; // unix socket peers have no address
  }
  return formatListenAddress({ kind: "tcp", host: socket.remoteAddress, port: socket.remotePort ?? 0 });
}
