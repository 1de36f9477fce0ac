import type { Interceptor } from "@connectrpc/connect";
import type { Logger } from "../observability/logger.js";
import type { ServerMetrics } from "../observability/metrics.js";
import { endStreamsOnAbort } from "../rpc/interceptors/end-streams-on-abort.js";
import { loggingInterceptor } from "../rpc/interceptors/logging.js";

/** The interceptors every call passes, outermost first. */
export interface CallPipeline {
  /** What unary calls pass, on the fast path and through connect alike. */
  readonly unary: readonly Interceptor[];
  /** What connect runs around every call: `unary`, then those that act on streams only. */
  readonly all: readonly Interceptor[];
}

/**
 * The one declared order of the interceptors: metrics outermost, so they
 * count every call whatever happens inside; then logging, which sees what
 * the caller gets. endStreamsOnAbort acts on streaming calls only, which
 * the fast path never serves. (connect's own list also starts with the
 * error repair and the refused-call marker: see rpc/rpc-handlers.ts.)
 */
export function callPipeline(logger: Logger, metrics: ServerMetrics | undefined): CallPipeline {
  const unary = [...(metrics ? [metrics.interceptor] : []), loggingInterceptor(logger)];
  return { unary, all: [...unary, endStreamsOnAbort] };
}
