import { setMaxListeners } from "node:events";
import type * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import type * as tls from "node:tls";
import type { Logger } from "../observability/logger.js";
import { RepeatLimitedLog } from "../observability/repeated-lines.js";
import { type Acceptors, plaintextAcceptor, tlsAcceptor } from "./accept.js";
import { bind, type SocketFileOptions } from "./bind.js";
import { chargeRequests } from "./charged-requests.js";
import { ConnectionTable } from "./connection-table.js";
import { drain } from "./drain.js";
import { http2CompatResponse } from "./h2/forbidden-fields.js";
import { Http1Connections } from "./http1.js";
import { Http2Sessions } from "./http2-sessions.js";
import { type ConnectionLimits, defaultLimits } from "./limits.js";
import { formatListenAddress, type ListenAddress } from "./listen-address.js";
import { type ConnectionMemory, MemoryBudget } from "./memory-budget.js";
import { peerOf, rawSocketOf } from "./peer-address.js";
import { createRequestGuard } from "./request-guard.js";
import { type CertificateInfo, createTlsListener, loadTls, type TlsFiles } from "./tls.js";

/** An HTTP/1.1 request, or an HTTP/2 one through node's compatibility layer. */
export type AnyRequest = http.IncomingMessage | http2.Http2ServerRequest;

/** What the transport knows of a request's connection, for the handlers it serves (free functions: pass them on as they are). */
export interface ConnectionFacts {
  /** The caller's address ("ip:port"; undefined on unix sockets). */
  readonly peerOf: (req: AnyRequest) => string | undefined;
  /** The caller's address of an HTTP/2 session. */
  readonly peerOfSession: (session: http2.Http2Session | undefined) => string | undefined;
  /** The memory account of an HTTP/2 session (see memory-budget.ts). */
  readonly memoryOfSession: (session: http2.Http2Session | undefined) => ConnectionMemory | undefined;
  /** Aborted when the drain's grace period is over. */
  readonly shutdownSignal: AbortSignal;
  /** Where lines a caller can cause once per request are logged, rate-limited per kind. */
  readonly repeats: RepeatLimitedLog;
}

/** The request handlers the transport hands requests to. */
export interface RequestHandlers {
  /** Takes an HTTP/2 stream before node's compatibility layer does (the gRPC fast path); false leaves it to `request`. */
  readonly stream?: ((stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => boolean) | undefined;
  /** Every other request, HTTP/1.1 or HTTP/2. */
  readonly request: (req: AnyRequest, res: http.ServerResponse | http2.Http2ServerResponse) => void;
  /** On --http-listen addresses, asked first: true if it answered the request (the plain HTTP routes). */
  readonly httpRoute?: ((req: http.IncomingMessage, res: http.ServerResponse) => boolean) | undefined;
}

/** How to bind the server and what to serve. */
export interface ServerOptions {
  /** Plaintext listeners: h2c (prior knowledge, what Tyk dials), and HTTP/1.1 for Connect and gRPC-Web. */
  readonly listen: readonly ListenAddress[];
  /** TLS listeners (h2 or HTTP/1.1 by ALPN); need `tls`. */
  readonly tlsListen?: readonly ListenAddress[];
  readonly tls?: TlsFiles | undefined;
  /** Plain HTTP/1.1 listeners: `httpRoute` first, then `request`. */
  readonly httpListen?: readonly ListenAddress[];
  /** Connection and call limits (default: defaultLimits). */
  readonly limits?: ConnectionLimits;
  readonly logger: Logger;
  /** Serve requests with an empty `:authority` (Tyk <= 5.8.2 without grpc_authority); see h2/empty-authority.ts. */
  readonly acceptEmptyAuthority: boolean;
  /** Unix socket files: whether to clear stale ones (default true) and their group. */
  readonly socketFiles?: Partial<SocketFileOptions>;
  /** Makes the handlers, once, from what the transport knows of each connection. */
  readonly handlers: (facts: ConnectionFacts) => RequestHandlers;
}

/** A bound server. */
export interface RunningServer {
  /** The plaintext addresses actually bound (port 0 resolved to the real port). */
  readonly addresses: readonly ListenAddress[];
  /** The TLS addresses actually bound. */
  readonly tlsAddresses: readonly ListenAddress[];
  /** The --http-listen addresses actually bound. */
  readonly httpAddresses: readonly ListenAddress[];
  /** Graceful stop (see drain.ts): resolves once every connection is gone; `forced` if the grace period ran out. */
  drain(graceMs: number): Promise<{ forced: boolean }>;
  /**
   * Re-reads the TLS files for new connections; open ones keep theirs.
   * Throws (keeping the old certificate) when the files are unusable;
   * returns undefined when there are no TLS listeners.
   */
  reloadTls(): CertificateInfo | undefined;
}

/**
 * Binds every listener and serves what `handlers` makes: h2c (HTTP/2
 * without TLS, what Tyk Gateway dials) and HTTP/1.1 on every plaintext
 * address, h2 and HTTP/1.1 on the TLS ones, HTTP/1.1 on --http-listen.
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
  const memory = new MemoryBudget(limits.memory);
  const socketMemory = new WeakMap<net.Socket, ConnectionMemory>();
  // Lines a caller can cause once per request are rate-limited per kind.
  const repeats = new RepeatLimitedLog(logger);
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

  const guard = createRequestGuard(repeats, { socket: peerOf, session: (session) => sessions.peerOf(session) });
  // (serveStream is made below, from the handlers; no stream arrives before the listeners are bound.)
  const sessions = new Http2Sessions({ limits, logger, guard, memory, served }, (stream, headers, flags, rawHeaders) =>
    serveStream(stream, headers, flags, rawHeaders),
  );
  const http1 = new Http1Connections({ limits, logger, repeats, guard, served, accepted: (socket) => socketMemory.set(socket, memory.connection()) });
  const callPeer = (req: AnyRequest) => ("stream" in req ? sessions.peerOf(req.stream.session) : peerOf(req.socket));
  const handlers = options.handlers({
    peerOf: callPeer,
    peerOfSession: (session) => sessions.peerOf(session),
    memoryOfSession: (session) => sessions.memoryOf(session),
    shutdownSignal: shutdown.signal,
    repeats,
  });
  const request = chargeRequests(
    handlers.request,
    (req) => ("stream" in req ? sessions.memoryOf(req.stream.session) : socketMemory.get(req.socket)),
    (req, reason) =>
      repeats.warn("reply refused", { path: req.url, protocol: req.headers["content-type"], reason, peer: callPeer(req) }, "reply refused: the call is reset"),
  );
  // node's compatibility layer (Http2ServerRequest/Response) on a server
  // that never listens: streams `handlers.stream` does not take are handed
  // to it exactly as node would hand them over itself.
  const compat = http2.createServer({ Http2ServerResponse: http2CompatResponse(logger) }, request);
  const takeStream = handlers.stream;
  const serveStream = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    if (takeStream === undefined || !takeStream(stream, headers)) {
      compat.emit("stream", stream, headers, flags, rawHeaders);
    }
  };
  const httpRoute = handlers.httpRoute;
  const acceptors: Acceptors = {
    http1: http1.acceptor(request),
    http2: (socket, stream) => sessions.handOver(socket, stream, peerOf(socket)),
  };
  // --http-listen: the plain HTTP routes first, then Connect and gRPC-Web.
  const acceptHttpApi = http1.acceptor(httpRoute ? (req, res) => httpRoute(req, res) || request(req, res) : request);
  const acceptPlaintext = plaintextAcceptor(acceptors, logger, options.acceptEmptyAuthority);
  const acceptTls = tlsAcceptor(acceptors);

  const socketFiles: SocketFileOptions = { prepare: options.socketFiles?.prepare ?? true, group: options.socketFiles?.group };
  const listeners: net.Server[] = [];
  const tlsListeners: tls.Server[] = [];
  const addresses: ListenAddress[] = [];
  const tlsAddresses: ListenAddress[] = [];
  const httpAddresses: ListenAddress[] = [];
  try {
    for (const address of options.listen) {
      const listener = net.createServer((socket) => rpcConnections.admit(socket) && acceptPlaintext(socket));
      listeners.push(listener);
      addresses.push(await bind(listener, address, logger, socketFiles));
    }
    for (const address of options.httpListen ?? []) {
      const listener = net.createServer((socket) => httpConnections.admit(socket) && acceptHttpApi(socket));
      listeners.push(listener);
      httpAddresses.push(await bind(listener, address, logger, socketFiles));
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
      tlsAddresses.push(await bind(listener, address, logger, socketFiles));
    }
  } catch (e) {
    listeners.forEach((l) => l.close());
    throw e;
  }
  if (loadedTls !== undefined) {
    logger.info(
      { addresses: tlsAddresses.map(formatListenAddress), mutual: options.tls?.clientCaFile !== undefined, ...loadedTls.certificate },
      "TLS certificate loaded",
    );
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
      const result = await drain({ listeners, sessions, http1, tables: [rpcConnections, httpConnections], shutdown, logger }, graceMs);
      repeats.flush();
      return result;
    },
  };
}
