import { AsyncLocalStorage } from "node:async_hooks";
import type { IncomingHttpHeaders } from "node:http";

/** The W3C trace context a call arrived with (Tyk 5.11+ sends it when OpenTelemetry is on). */
export interface TraceContext {
  /** 32 lowercase hex digits. */
  readonly traceId: string;
  /** The caller's span (the header's parent-id): 16 lowercase hex digits. */
  readonly spanId: string;
  /** The caller's sampled flag. */
  readonly sampled: boolean;
  /** The headers as received, for passing on to further calls. */
  readonly traceparent: string;
  readonly tracestate: string | undefined;
}

// version-traceid-parentid-flags (W3C Trace Context, level 1); later versions may append fields.
const traceparentPattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** Parses a `traceparent` header; undefined when absent or invalid (as the spec says to treat it). */
export function parseTraceparent(traceparent: string | undefined, tracestate?: string): TraceContext | undefined {
  const m = traceparent === undefined ? null : traceparentPattern.exec(traceparent.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === "ff" || (version === "00" && rest !== undefined) || /^0+$/.test(traceId) || /^0+$/.test(spanId)) {
    return undefined;
  }
  return { traceId, spanId, sampled: (parseInt(flags, 16) & 1) === 1, traceparent: traceparent!.trim(), tracestate };
}

const storage = new AsyncLocalStorage<TraceContext>();

/** The trace context of the call running now, if it came with one. */
export function currentTrace(): TraceContext | undefined {
  return storage.getStore();
}

/**
 * Calls `fn(...args)` (the serving of one request) in the request's trace
 * context, so that every log line written for it, by the server or a
 * plugin, carries the trace and span ids (the logger's mixin reads
 * currentTrace()). Costs one property read, and no closure, for requests
 * without a `traceparent`.
 */
export function runInTrace<A extends unknown[], T>(headers: IncomingHttpHeaders, fn: (...args: A) => T, ...args: A): T {
  const value = headers.traceparent;
  if (value === undefined) return fn(...args);
  const trace = parseTraceparent(Array.isArray(value) ? value[0] : value, typeof headers.tracestate === "string" ? headers.tracestate : undefined);
  return trace === undefined ? fn(...args) : runWithTrace(trace, fn, ...args);
}

/**
 * Calls `fn(...args)` in a trace context taken earlier with currentTrace():
 * for a call's work that resumes from a node event (a stream's data or
 * end), which runs in the context of whatever emitted it, not the call's.
 */
export function runWithTrace<A extends unknown[], T>(trace: TraceContext, fn: (...args: A) => T, ...args: A): T {
  return storage.run(trace, fn, ...args);
}

// What traceLogFields returns outside a trace context: no fields (shared, never to be changed).
const noTraceFields: Readonly<{ traceId?: string; spanId?: string }> = Object.freeze({});

/** The log fields of the current trace context, for pino's mixin. */
export function traceLogFields(): Readonly<{ traceId?: string; spanId?: string }> {
  const trace = storage.getStore();
  return trace === undefined ? noTraceFields : { traceId: trace.traceId, spanId: trace.spanId };
}

/**
 * pino's mixinMergeStrategy for traceLogFields: pino's own copies every
 * field of every line into the mixin's object, even when it has nothing to
 * add (most lines); this passes such lines' fields on as they are.
 */
export function mergeTraceFields(fields: object, trace: object): object {
  return trace === noTraceFields ? fields : Object.assign(trace, fields);
}
