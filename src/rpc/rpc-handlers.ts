import { createContextValues, type Interceptor, type ServiceImplSpec } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import type { Logger } from "../observability/logger.js";
import { compressions } from "../transport/compression.js";
import type { ConnectionFacts, RequestHandlers } from "../transport/start-server.js";
import { createGrpcUnaryFastPath } from "./fast-path/grpc-unary.js";
import { encodableErrorsInterceptor } from "./interceptors/encodable-errors.js";
import { rejectExpiredDeadline } from "./interceptors/expired-deadline.js";
import { kReached, markReached, refusedCallLog } from "./interceptors/refused-calls.js";
import { kPeer, kServedBy } from "./peer.js";
import { registerServices } from "./register-services.js";
import { unknownMethod } from "./unknown-method.js";

/** What the RPC handlers serve, and how. */
export interface RpcHandlerOptions {
  /** The service implementations (see app/routes.ts). */
  readonly services: readonly ServiceImplSpec[];
  /** Around every unary call, outermost first: the fast path runs these, connect runs them for unary methods. */
  readonly unaryInterceptors: readonly Interceptor[];
  /** Around every call connect serves, outermost first (the unary ones, then those for streams). */
  readonly interceptors: readonly Interceptor[];
  readonly logger: Logger;
  /** Largest request message; larger ones get RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes: number;
  /** Serve unary gRPC calls on the lean path (fast-path/); off: connect serves everything. */
  readonly fastPath: boolean;
}

/**
 * The gRPC, gRPC-Web and Connect handlers of every service: connect-node's
 * adapter, and in front of it, for unary gRPC with protobuf, the fast path.
 * Both get the same interceptors, request gate, limits and compressions.
 */
export function createRpcHandlers(options: RpcHandlerOptions, facts: ConnectionFacts): RequestHandlers {
  const { logger } = options;
  // connect-node's gzip and brotli, with decompression counted against the memory budget.
  const acceptCompression = [...compressions];
  const refused = refusedCallLog(facts.repeats, facts.peerOf);
  const request = refused.wrap(
    connectNodeAdapter({
      routes: registerServices(options.services),
      readMaxBytes: options.maxMessageBytes,
      acceptCompression,
      // Outermost: the fast path applies encodableError itself, where it writes the status.
      interceptors: [encodableErrorsInterceptor(logger), markReached, ...options.interceptors],
      requestGate: rejectExpiredDeadline,
      shutdownSignal: facts.shutdownSignal,
      fallback: unknownMethod,
      contextValues: (req) => createContextValues().set(kPeer, facts.peerOf(req)).set(kReached, refused.marker(req)),
    }),
  );
  const stream = options.fastPath
    ? createGrpcUnaryFastPath({
        services: options.services,
        interceptors: options.unaryInterceptors,
        requestGate: rejectExpiredDeadline,
        readMaxBytes: options.maxMessageBytes,
        acceptCompression,
        compressMinBytes: 1024, // connect's default
        shutdownSignal: facts.shutdownSignal,
        contextValues: (session) => createContextValues().set(kPeer, facts.peerOfSession(session)).set(kServedBy, "fast-path"),
        logger,
        repeats: facts.repeats,
        connectionMemory: facts.memoryOfSession,
      })
    : undefined;
  return { request, stream };
}
