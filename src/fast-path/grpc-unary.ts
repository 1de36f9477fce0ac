import type { IncomingHttpHeaders, OutgoingHttpHeaders, ServerHttp2Stream } from "node:http2";
import { create, type DescMessage, type DescMethodUnary, type DescService, type MessageInitShape, type MessageShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  type HandlerContext,
  type Interceptor,
  type MethodImplSpec,
  type ServiceImplSpec,
  type UnaryRequest,
  type UnaryResponse,
} from "@connectrpc/connect";
import { compressedFlag, compressionNegotiate, createMethodSerializationLookup, type Compression } from "@connectrpc/connect/protocol";
import { contentTypeProto, parseContentType, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "../logger.js";
import { peerAddress } from "../peer.js";
import { FastCallContext, type CallEnvironment } from "./call-context.js";
import { readUnaryRequest } from "./envelope-reader.js";
import { isPromiseLike } from "../maybe-promise.js";
import { keepWireBytes, receivedBytesToReply } from "../wire-bytes.js";

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
}

/** Serves one stream if it is a unary gRPC call this path handles; false hands it to connect. */
export type StreamHandler = (stream: ServerHttp2Stream, headers: IncomingHttpHeaders) => boolean;

type UnaryFn = (req: UnaryRequest) => Promise<UnaryResponse>;

interface UnaryRoute {
  readonly spec: Extract<MethodImplSpec, { kind: "unary" }>;
  readonly parse: (data: Uint8Array) => MessageShape<DescMessage>;
  readonly serialize: (message: MessageShape<DescMessage>) => Uint8Array;
  /** The implementation wrapped in the interceptors, built once per method. */
  readonly invoke: UnaryFn;
}

/** One call's context and the request/response objects made for it. */
interface CallState {
  readonly context: FastCallContext;
  request?: UnaryRequest;
  response?: UnaryResponse;
}

// The call a request object belongs to; a symbol key survives `{ ...req }` in interceptors.
const kCall = Symbol("fast-path call");
type FastRequest = UnaryRequest & { readonly [kCall]: CallState };

/**
 * A lean path for unary gRPC calls with protobuf payloads straight on
 * node:http2 streams. It calls the same typed implementations through the
 * same interceptors and request gate as the connect router, and writes the
 * same bytes, headers and trailers (checked by test/fast-path-differential);
 * what it leaves out is connect's per-call machinery (async-iterable
 * pipeline, eager web Headers and AbortSignals), which is most of connect's
 * cost per call. Everything else (streaming methods, gRPC-Web, Connect,
 * JSON, other HTTP methods) is left to connect.
 */
export function createGrpcUnaryFastPath(options: GrpcUnaryFastPathOptions): StreamHandler {
  const routes = new Map<string, UnaryRoute>();
  for (const service of options.services) {
    for (const spec of Object.values(service.methods)) {
      if (spec.kind === "unary") {
        routes.set(`/${service.service.typeName}/${spec.method.name}`, unaryRoute(spec, options));
      }
    }
  }
  return (stream, headers) => {
    if (headers[":method"] !== "POST") {
      return false;
    }
    const path = headers[":path"] ?? "";
    const query = path.indexOf("?");
    const route = routes.get(query === -1 ? path : path.slice(0, query));
    if (route === undefined || !isGrpcProto(headers["content-type"])) {
      return false;
    }
    serve(route, stream, headers, options);
    return true;
  };
}

function unaryRoute(spec: Extract<MethodImplSpec, { kind: "unary" }>, options: GrpcUnaryFastPathOptions): UnaryRoute {
  // connect's own serializers, so that limits and error messages match.
  const serialization = createMethodSerializationLookup(spec.method, undefined, undefined, {
    readMaxBytes: options.readMaxBytes,
    writeMaxBytes: 0xffffffff,
  });
  const input = serialization.getI(true);
  const output = serialization.getO(true);
  const method = spec.method as DescMethodUnary;
  const reply = (call: CallState, message: MessageInitShape<DescMessage>) => (call.response = new FastUnaryResponse(call.context, create(method.output, message)));
  const impl: UnaryFn = (req) => {
    const call = (req as FastRequest)[kCall];
    try {
      const message = spec.impl(req.message, req === call.request ? call.context : mergedContext(call.context, req));
      // A synchronous implementation's reply costs no extra tick and no closure.
      return isPromiseLike(message) ? message.then((m) => reply(call, m)) : Promise.resolve(reply(call, message));
    } catch (e) {
      return Promise.reject(e);
    }
  };
  let invoke = impl;
  for (const interceptor of [...options.interceptors].reverse()) {
    invoke = interceptor(invoke as never) as UnaryFn;
  }
  // Only a method whose reply has its request's type (Dispatch) can answer
  // with the request itself: its requests keep the bytes they came in, and
  // a reply declared unchanged since (an Object no hook edited) goes out as
  // them, without encoding 505 bytes again (measured: about a tenth of a
  // call). Other methods do neither, per call.
  if (method.input !== method.output) {
    return { spec, parse: (d) => input.parse(d), serialize: (m) => output.serialize(m), invoke };
  }
  return {
    spec,
    parse: (d) => keepWireBytes(input.parse(d), d),
    serialize: (m) => receivedBytesToReply(m) ?? output.serialize(m),
    invoke,
  };
}

async function serve(route: UnaryRoute, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: GrpcUnaryFastPathOptions) {
  // Failures reach us as the stream's close and rstCode; an unhandled
  // "error" event would take the process down.
  stream.on("error", ignore);
  const { spec } = route;
  const timeout = parseTimeout(header(headers, "grpc-timeout"), Number.MAX_SAFE_INTEGER);
  const context = new FastCallContext(spec.method.parent, spec.method, stream, headers, options, timeout.timeoutMs);
  const call: CallState = { context };
  const compression = compressionNegotiate(
    options.acceptCompression as Compression[],
    header(headers, "grpc-encoding"),
    header(headers, "grpc-accept-encoding"),
    "grpc-accept-encoding",
  );
  let response: UnaryResponse | undefined;
  let error: unknown;
  try {
    const gate = options.requestGate?.(context);
    if (gate !== undefined) {
      await gate; // (no await, so no extra tick, when the gate is synchronous)
    }
    if (compression.error !== undefined) {
      throw compression.error;
    }
    if (timeout.error !== undefined) {
      throw timeout.error;
    }
    const message = await readUnaryRequest(stream, options.readMaxBytes, compression.request, route.parse);
    response = await route.invoke((call.request = new FastUnaryRequest(call, message)));
  } catch (e) {
    error = e;
  }
  context.end();
  if (error !== undefined && call.request === undefined) {
    // Refused before reaching the interceptors (bad framing, encoding or
    // timeout; expired deadline), so the logging interceptor never saw it.
    const err = ConnectError.from(error);
    options.logger.warn({ rpc: `${spec.method.parent.typeName}/${spec.method.name}`, code: Code[err.code], message: err.rawMessage, peer: peerAddress(context.values) }, "rpc refused");
  }
  if (stream.destroyed || stream.closed) {
    return; // the caller reset the stream: nobody to answer
  }
  let body: Uint8Array | undefined;
  try {
    if (response !== undefined) {
      const data = route.serialize(response.message);
      const compress = compression.response !== null && data.byteLength >= options.compressMinBytes;
      body = envelope(compress ? compressedFlag : 0, compress ? await compression.response!.compress(data) : data);
    }
  } catch (e) {
    error = e;
  }
  respond(stream, call, response, compression.response, body, error);
}

// Headers (and trailers) as connect writes them: its defaults first, then
// what the handler or interceptors set.
function respond(
  stream: ServerHttp2Stream,
  call: CallState,
  response: UnaryResponse | undefined,
  compression: Compression | null,
  body: Uint8Array | undefined,
  error: unknown,
) {
  const head: OutgoingHttpHeaders = { ":status": 200, "content-type": contentTypeProto };
  if (compression !== null) {
    head["grpc-encoding"] = compression.name;
  }
  // An interceptor may answer with headers of its own (a spread copy of
  // ours has none: the call's stand in); otherwise only read the call's if a
  // handler created them.
  const foreign = response !== undefined && response !== call.response ? response : undefined;
  const { context } = call;
  const responseHeader = (foreign?.header as Headers | undefined) ?? (context.hasResponseHeader ? context.responseHeader : undefined);
  if (responseHeader !== undefined) {
    Object.assign(head, nodeHeaders(responseHeader));
  }
  let trailer: OutgoingHttpHeaders;
  const responseTrailer = (foreign?.trailer as Headers | undefined) ?? (context.hasResponseTrailer ? context.responseTrailer : undefined);
  if (error === undefined && responseTrailer === undefined) {
    trailer = { "grpc-status": "0" };
  } else {
    const t = new Headers({ "grpc-status": "0" });
    responseTrailer?.forEach((value, key) => t.set(key, value));
    if (error !== undefined) {
      setTrailerStatus(t, error instanceof ConnectError ? error : new ConnectError("internal error", Code.Internal, undefined, undefined, error));
    }
    trailer = nodeHeaders(t);
  }
  if (error !== undefined) {
    body = undefined;
  }
  try {
    (stream as TrailerStream)[kTrailer] = trailer;
    stream.respond(head, { waitForTrailers: true });
    stream.on("wantTrailers", sendTrailer); // (emitted once per stream)
    stream.end(body);
  } catch {
    // The stream closed between our check and the write: nobody to answer.
  }
}

// Classes rather than object literals with getters: V8 builds literals with
// accessors on a slow path (measured: a hook context made that way cost a
// sixth of the Dispatch throughput). The lazy parts are prototype getters,
// so `{ ...req }` would not copy them: interceptors pass the request on
// (setting headers on req.header), as ours do; see mergedContext for the
// copy that still works.
class FastUnaryRequest implements FastRequest {
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

function nodeHeaders(headers: Headers): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  headers.forEach((value, key) => {
    out[key] = value;
  });
  return out;
}

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return typeof value === "string" ? value : Array.isArray(value) ? value.join(", ") : null;
}

function ignore() {}

// connect's encodeEnvelope, in a Buffer from node's pool: a new Uint8Array
// per reply was 1.5 % of an Echo call.
function envelope(flags: number, data: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(data.byteLength + 5);
  bytes[0] = flags;
  bytes.writeUInt32BE(data.byteLength, 1);
  bytes.set(data, 5);
  return bytes;
}

// The trailers a stream is to end with, kept on the stream so that one
// shared listener can send them (no closure per call).
const kTrailer = Symbol("grpc trailer");
type TrailerStream = ServerHttp2Stream & { [kTrailer]?: OutgoingHttpHeaders };

function sendTrailer(this: TrailerStream) {
  this.sendTrailers(this[kTrailer]!);
}

// What gRPC clients send, checked without a regular expression; anything
// else goes through connect's parser (`application/grpc+proto`, parameters).
function isGrpcProto(contentType: string | undefined): boolean {
  return contentType === "application/grpc" || parseContentType(contentType ?? null)?.binary === true;
}
