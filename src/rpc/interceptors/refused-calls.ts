import type { OutgoingHttpHeaders } from "node:http";
import { Code, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { ConnectNodeAdapterOptions } from "@connectrpc/connect-node";
import type { RepeatLimitedLog } from "../../observability/repeated-lines.js";

type NodeHandler = NonNullable<ConnectNodeAdapterOptions["fallback"]>;
type NodeRequest = Parameters<NodeHandler>[0];

/** Whether a call on connect's path got as far as the interceptors. */
interface Marker {
  reached: boolean;
}

/** Context value: the call's marker (connect's path only). */
export const kReached = createContextKey<Marker | undefined>(undefined, { description: "interceptors reached" });

/** Marks the call as seen by the interceptors; goes first in connect's interceptor list. */
export const markReached: Interceptor = (next) => (req) => {
  const marker = req.contextValues.get(kReached);
  if (marker !== undefined) marker.reached = true;
  return next(req);
};

/** Logs the calls connect-node refuses before its interceptors run. */
export interface RefusedCallLog {
  /** The marker of a request `wrap` has seen, for the adapter's contextValues (key kReached). */
  marker(req: NodeRequest): Marker | undefined;
  /** Wraps connect's node handler (including its fallback). */
  wrap(handler: NodeHandler): NodeHandler;
}

/**
 * Logs, as "rpc refused", the requests connect-node answers without running
 * the interceptors, where the logging interceptor cannot see them: unknown
 * paths, a wrong content-type or method, undecodable or oversized
 * messages, bad compression or timeouts. The fast path logs its own. Lines
 * are rate-limited per path and status (`repeats`).
 */
export function refusedCallLog(repeats: RepeatLimitedLog, peerOf: (req: NodeRequest) => string | undefined): RefusedCallLog {
  const markers = new WeakMap<NodeRequest, Marker>();
  return {
    marker: (req) => markers.get(req),
    wrap: (handler) => (req, res) => {
      const marker: Marker = { reached: false };
      markers.set(req, marker);
      // Now: once the request has ended, an HTTP/2 stream no longer knows its session.
      const peer = peerOf(req);
      // A gRPC status after a body travels in trailers, which node does not let us read back.
      let trailers: OutgoingHttpHeaders | undefined;
      const addTrailers = res.addTrailers.bind(res);
      res.addTrailers = (t: OutgoingHttpHeaders) => {
        trailers = t;
        addTrailers(t);
      };
      res.once("close", () => {
        if (marker.reached) return;
        // The caller went away (a reset, a closed connection) before its
        // request ended: whatever connect made of what had arrived, the
        // call was cancelled.
        const gone = req.aborted;
        const grpcStatus = gone ? Code.Canceled : (res.getHeader("grpc-status") ?? trailers?.["grpc-status"]);
        const grpcMessage = gone ? "the caller went away before the call was answered" : (res.getHeader("grpc-message") ?? trailers?.["grpc-message"]);
        repeats.warn(
          `rpc refused|${req.url?.slice(0, 200)}|${res.statusCode}|${grpcStatus}`,
          {
            path: req.url,
            method: req.method,
            protocol: req.headers["content-type"],
            httpStatus: res.statusCode,
            ...(gone && { code: Code[Code.Canceled] }),
            ...(grpcStatus !== undefined && { grpcStatus: Number(grpcStatus) }),
            ...(grpcMessage !== undefined && { message: percentDecoded(String(grpcMessage)) }),
            peer,
          },
          "rpc refused",
        );
      });
      handler(req, res);
    },
  };
}

// grpc-message is percent-encoded; a malformed one is logged as it came.
function percentDecoded(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}
