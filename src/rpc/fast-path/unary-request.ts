import { create, type DescMessage, type DescMethodUnary, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import type { ContextValues, HandlerContext, MethodImplSpec, UnaryRequest, UnaryResponse } from "@connectrpc/connect";
import { isPromiseLike, type MaybePromise } from "../../util/maybe-promise.js";
import type { FastCallContext } from "./call-context.js";

/** A unary method's implementation, as connect's router holds it. */
export type UnaryImplSpec = Extract<MethodImplSpec, { kind: "unary" }>;

/** One call's context and the request/response objects made for it. */
export interface CallState {
  readonly context: FastCallContext;
  readonly request: UnaryRequest | undefined;
  response: UnaryResponse | undefined;
}

// The call a request object belongs to; a symbol key survives `{ ...req }` in interceptors.
const kCall = Symbol("fast-path call");
type FastRequest = UnaryRequest & { readonly [kCall]: CallState };

// Classes rather than object literals with getters: V8 builds literals with
// accessors on a slow path, which a hook context made that way paid on every
// Dispatch. The lazy parts are prototype getters,
// so `{ ...req }` would not copy them: interceptors pass the request on
// (setting headers on req.header), as ours do; see mergedContext for the
// copy that still works.
/** The request the interceptors and the implementation see. */
export class FastUnaryRequest implements FastRequest {
  readonly stream = false;
  readonly requestMethod = "POST";
  readonly service: DescService;
  readonly method: DescMethodUnary;
  readonly [kCall]: CallState;

  constructor(
    state: CallState,
    readonly message: MessageShape<DescMessage>,
  ) {
    this[kCall] = state;
    this.service = state.context.service;
    this.method = state.context.method as DescMethodUnary;
  }

  get url(): string {
    return this[kCall].context.url;
  }
  get signal(): AbortSignal {
    return this[kCall].context.signal;
  }
  get header(): Headers {
    return this[kCall].context.requestHeader;
  }
  get contextValues(): ContextValues {
    return this[kCall].context.values;
  }
}

/** The implementation's reply, with the call's response headers and trailers. */
class FastUnaryResponse implements UnaryResponse {
  readonly stream = false;
  readonly service: DescService;
  readonly method: DescMethodUnary;

  constructor(
    readonly call: FastCallContext,
    readonly message: MessageShape<DescMessage>,
  ) {
    this.service = call.service;
    this.method = call.method as DescMethodUnary;
  }

  get header(): Headers {
    return this.call.responseHeader;
  }
  get trailer(): Headers {
    return this.call.responseTrailer;
  }
}

/**
 * Calls a unary implementation with a request of this path (or an
 * interceptor's copy of one); its reply becomes the call's response.
 */
export function invokeImplementation(spec: UnaryImplSpec, req: UnaryRequest): MaybePromise<UnaryResponse> {
  const call = (req as FastRequest)[kCall];
  const message = spec.impl(req.message, req === call.request ? call.context : mergedContext(call.context, req));
  // A synchronous implementation's reply costs no promise and no closure.
  return isPromiseLike(message) ? message.then((m) => reply(spec, call, m)) : reply(spec, call, message);
}

function reply(spec: UnaryImplSpec, call: CallState, message: MessageInitShape<DescMessage>): UnaryResponse {
  return (call.response = new FastUnaryResponse(call.context, create((spec.method as DescMethodUnary).output, message)));
}

// An interceptor passed on a request of its own: the handler sees its
// header, signal and values, as connect's mergeRequest does (a spread copy
// of ours lacks the lazy parts: the call's own stand in).
function mergedContext(call: FastCallContext, req: Partial<UnaryRequest>): HandlerContext {
  return {
    method: call.method,
    service: req.service ?? call.service,
    protocolName: call.protocolName,
    requestMethod: call.requestMethod,
    url: call.url,
    timeoutMs: call.timeoutMs,
    requestHeader: req.header ?? call.requestHeader,
    responseHeader: call.responseHeader,
    responseTrailer: call.responseTrailer,
    signal: req.signal ?? call.signal,
    values: req.contextValues ?? call.values,
  };
}
