import type { Http2Session } from "node:http2";
import type { HandlerContext, Interceptor, ServiceImplSpec } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import type { Logger } from "../../observability/logger.js";
import type { RepeatLimitedLog } from "../../observability/repeated-lines.js";
import type { ConnectionMemory } from "../../transport/memory-budget.js";
import type { CallEnvironment } from "./call-context.js";

/** Settings of the fast path; the same values the connect adapter is given. */
export interface GrpcUnaryFastPathOptions extends CallEnvironment {
  /** The service implementations (their unary methods are served here). */
  readonly services: readonly ServiceImplSpec[];
  /** Run around every call, outermost first, as connect runs them. */
  readonly interceptors: readonly Interceptor[];
  /** Runs before the request body is read; throwing refuses the call. */
  readonly requestGate?: (ctx: HandlerContext) => void | Promise<void>;
  /** Largest accepted request message. */
  readonly readMaxBytes: number;
  /** Request and response compressions, in order of preference. */
  readonly acceptCompression: readonly Compression[];
  /** Responses smaller than this are never compressed (connect's default: 1024). */
  readonly compressMinBytes: number;
  readonly logger: Logger;
  /** Where refusals are logged, rate-limited per kind. */
  readonly repeats: RepeatLimitedLog;
  /** The memory account of a call's connection (none: nothing is counted). */
  readonly connectionMemory?: (session: Http2Session | undefined) => ConnectionMemory | undefined;
}
