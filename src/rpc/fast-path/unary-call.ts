import { constants, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from "node:http2";
import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { Code, ConnectError, type UnaryResponse } from "@connectrpc/connect";
import { type Compression, compressedFlag, compressionNegotiate } from "@connectrpc/connect/protocol";
import { contentTypeProto, parseTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import { currentTrace, runWithTrace } from "../../observability/trace-context.js";
import { copyAllowedFields, logDroppedFields } from "../../transport/h2/forbidden-fields.js";
import type { CallMemory } from "../../transport/memory-budget.js";
import { isPromiseLike, type MaybePromise } from "../../util/maybe-promise.js";
import { encodableError } from "../encodable-error.js";
import { peerAddress } from "../peer.js";
import { rpcName } from "../rpc-name.js";
import { FastCallContext } from "./call-context.js";
import { UnaryEnvelopes } from "./envelope-reader.js";
import type { GrpcUnaryFastPathOptions } from "./options.js";
import type { UnaryFn } from "./unary-chain.js";
import { type CallState, FastUnaryRequest, type UnaryImplSpec } from "./unary-request.js";

/** What the fast path knows of one unary method, built once per method. */
export interface UnaryRoute {
  readonly spec: UnaryImplSpec;
  readonly parse: (data: Uint8Array) => MessageShape<DescMessage>;
  readonly serialize: (message: MessageShape<DescMessage>) => Uint8Array;
  /** The implementation wrapped in the interceptors, built once per method. */
  readonly invoke: UnaryFn;
}

/** Serves one unary gRPC call on its stream, to its trailers. */
export function serveUnaryCall(route: UnaryRoute, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: GrpcUnaryFastPathOptions) {
  // Failures reach us as the stream's close and rstCode; an unhandled
  // "error" event would take the process down.
  stream.on("error", ignore);
  const call = new UnaryCall(route, stream, headers, options);
  (stream as CallStream)[kUnaryCall] = call;
  call.start();
}

// What a stream carries for listeners shared by every call (no closures per
// call): the call until it is answered (then let go, so that the request
// and reply are garbage while node still holds the stream), and the
// trailers to end with.
const kUnaryCall = Symbol("fast-path unary call");
const kTrailer = Symbol("grpc trailer");
// What the call holds of the memory budget, given back when the stream
// closes: the reply has been sent (or the stream reset) by then.
const kMemory = Symbol("call memory");
type CallStream = ServerHttp2Stream & { [kUnaryCall]: UnaryCall | undefined; [kTrailer]?: OutgoingHttpHeaders; [kMemory]?: CallMemory };

function onData(this: CallStream, chunk: Buffer) {
  this[kUnaryCall]?.data(chunk);
}
function onEnd(this: CallStream) {
  this[kUnaryCall]?.end();
}
function onClosed(this: CallStream) {
  this[kUnaryCall]?.closed();
}

// For a call that came with a trace context: node's stream events do not
// carry it, and the hook and every log line of the call must see it.
function inCallTrace<A extends unknown[]>(listener: (this: CallStream, ...args: A) => void) {
  return function (this: CallStream, ...args: A) {
    const trace = this[kUnaryCall]?.trace;
    if (trace !== undefined) runWithTrace(trace, () => listener.apply(this, args));
  };
}
// The stream's close gives back the call's memory (its reply is sent, or
// the stream reset: the call itself may be long gone), then ends a call
// still reading. Only the second part needs the call's trace.
function onClose(this: CallStream) {
  this[kMemory]?.releaseAll();
  onClosed.call(this);
}
const tracedClosed = inCallTrace(onClosed);
function onTracedClose(this: CallStream) {
  this[kMemory]?.releaseAll();
  tracedClosed.call(this);
}
const listeners = { data: onData, end: onEnd, close: onClose };
const tracedListeners = { data: inCallTrace(onData), end: inCallTrace(onEnd), close: onTracedClose };

function sendTrailer(this: CallStream) {
  this.sendTrailers(this[kTrailer]!);
}

/**
 * One call, from its headers to its trailers: gate, read, invoke, answer.
 * Each step runs as soon as its input is there, in the same tick when it
 * is synchronous (a synchronous gate, hook and implementation, an
 * uncompressed message): no promise and no closure per call on that path.
 * `finish` runs exactly once, with the response or the error.
 */
class UnaryCall implements CallState {
  readonly context: FastCallContext;
  request: FastUnaryRequest | undefined;
  response: UnaryResponse | undefined;
  /** The trace context the call arrived in, if any. */
  readonly trace = currentTrace();
  readonly #route: UnaryRoute;
  readonly #stream: ServerHttp2Stream;
  readonly #options: GrpcUnaryFastPathOptions;
  readonly #compression: ReturnType<typeof compressionNegotiate>;
  readonly #timeoutError: ConnectError | undefined;
  #envelopes: UnaryEnvelopes | undefined;
  #memory: CallMemory | undefined;

  constructor(route: UnaryRoute, stream: ServerHttp2Stream, headers: IncomingHttpHeaders, options: GrpcUnaryFastPathOptions) {
    const timeout = parseTimeout(header(headers, "grpc-timeout"), Number.MAX_SAFE_INTEGER);
    this.context = new FastCallContext(route.spec.method.parent, route.spec.method, stream, headers, options, timeout.timeoutMs);
    this.#timeoutError = timeout.error;
    this.#route = route;
    this.#stream = stream;
    this.#options = options;
    this.#compression = compressionNegotiate(
      options.acceptCompression as Compression[],
      header(headers, "grpc-encoding"),
      header(headers, "grpc-accept-encoding"),
      "grpc-accept-encoding",
    );
  }

  start(): void {
    let gate: void | Promise<void>;
    try {
      gate = this.#options.requestGate?.(this.context);
    } catch (e) {
      return this.#finish(undefined, e);
    }
    if (gate !== undefined) {
      gate.then(
        () => this.#read(),
        (e: unknown) => this.#finish(undefined, e),
      );
    } else {
      this.#read();
    }
  }

  #read(): void {
    if (this.#compression.error !== undefined) {
      return this.#finish(undefined, this.#compression.error);
    }
    if (this.#timeoutError !== undefined) {
      return this.#finish(undefined, this.#timeoutError);
    }
    this.#envelopes = new UnaryEnvelopes(this.#options.readMaxBytes);
    const stream = this.#stream;
    this.#memory = (stream as CallStream)[kMemory] = this.#options.connectionMemory?.(stream.session)?.call();
    // Not removed once read: each checks that reading is still on.
    const on = this.trace === undefined ? listeners : tracedListeners;
    stream.on("close", on.close);
    if (stream.readableEnded) {
      // A request with no body at all (END_STREAM on its headers): node has
      // already emitted "end".
      return this.#requestRead();
    }
    stream.on("data", on.data);
    stream.on("end", on.end);
  }

  /** A chunk of the request body. */
  data(chunk: Buffer): void {
    const envelopes = this.#envelopes;
    if (envelopes === undefined) {
      return; // read already, or refused
    }
    let enough: boolean;
    try {
      this.#memory?.take(chunk.length);
      enough = envelopes.push(chunk);
    } catch (e) {
      this.#envelopes = undefined;
      return this.#finish(undefined, e);
    }
    if (enough) {
      this.#requestRead();
    }
  }

  /** The end of the request body. */
  end(): void {
    if (this.#stream.aborted) {
      // The connection went away mid-request: node ends the body before it
      // closes the stream. What was sent is incomplete, but the caller left.
      return this.closed();
    }
    if (this.#envelopes !== undefined) {
      this.#requestRead();
    }
  }

  /** The stream closed: before the request ended, it was reset, and nobody is left to answer. */
  closed(): void {
    if (this.#envelopes !== undefined) {
      this.#envelopes = undefined;
      this.#finish(undefined, new ConnectError("request stream closed before its end", Code.Canceled));
    }
  }

  #requestRead(): void {
    const envelopes = this.#envelopes!;
    this.#envelopes = undefined;
    let message: MaybePromise<MessageShape<DescMessage>>;
    try {
      message = envelopes.message(this.#compression.request, this.#route.parse, this.#memory);
    } catch (e) {
      return this.#finish(undefined, e);
    }
    if (isPromiseLike(message)) {
      message.then(
        (m) => this.#invoke(m),
        (e: unknown) => this.#finish(undefined, e),
      );
    } else {
      this.#invoke(message);
    }
  }

  #invoke(message: MessageShape<DescMessage>): void {
    let response: MaybePromise<UnaryResponse>;
    try {
      response = this.#route.invoke((this.request = new FastUnaryRequest(this, message)));
    } catch (e) {
      return this.#finish(undefined, e);
    }
    if (isPromiseLike(response)) {
      response.then(
        (r) => this.#finish(r, undefined),
        (e: unknown) => this.#finish(undefined, e),
      );
    } else {
      this.#finish(response, undefined);
    }
  }

  #finish(response: UnaryResponse | undefined, error: unknown): void {
    (this.#stream as CallStream)[kUnaryCall] = undefined;
    this.context.end();
    if (error !== undefined && this.request === undefined) {
      // Refused before reaching the interceptors (bad framing, encoding or
      // timeout; expired deadline), so the logging interceptor never saw it.
      const err = ConnectError.from(error);
      const rpc = rpcName(this.#route.spec.method);
      this.#options.repeats.warn(
        `rpc refused|${rpc}|${err.code}`,
        { rpc, code: Code[err.code], message: err.rawMessage, peer: peerAddress(this.context.values) },
        "rpc refused",
      );
    }
    const stream = this.#stream;
    if (stream.destroyed || stream.closed) {
      return; // the caller reset the stream: nobody to answer
    }
    if (response === undefined) {
      return this.#respond(undefined, undefined, error);
    }
    let data: Uint8Array;
    try {
      data = this.#route.serialize(response.message);
    } catch (e) {
      return this.#respond(response, undefined, e);
    }
    const compression = this.#compression.response;
    if (compression === null || data.byteLength < this.#options.compressMinBytes) {
      return this.#respondWith(response, envelope(0, data));
    }
    compression.compress(data).then(
      (compressed) => this.#respondWith(response, envelope(compressedFlag, compressed)),
      (e: unknown) => this.#respond(response, undefined, e),
    );
  }

  // A reply counts against the memory budget until it has been sent (the
  // stream's close gives it back); one that does not fit is refused like a
  // request would be.
  #respondWith(response: UnaryResponse, body: Buffer): void {
    try {
      this.#memory?.take(body.byteLength);
    } catch (e) {
      return this.#respond(response, undefined, e);
    }
    this.#respond(response, body, undefined);
  }

  // Headers (and trailers) as connect writes them: its defaults first, then
  // what the handler or interceptors set, less what HTTP/2 forbids.
  #respond(response: UnaryResponse | undefined, body: Uint8Array | undefined, error: unknown): void {
    const head: OutgoingHttpHeaders = { ":status": 200, "content-type": contentTypeProto };
    const compression = this.#compression.response;
    if (compression !== null) {
      head["grpc-encoding"] = compression.name;
    }
    let dropped: string[] | undefined;
    // An interceptor may answer with headers of its own (a spread copy of
    // ours has none: the call's stand in); otherwise only read the call's if a
    // handler created them.
    const foreign = response !== undefined && response !== this.response ? response : undefined;
    const { context } = this;
    const responseHeader = (foreign?.header as Headers | undefined) ?? (context.hasResponseHeader ? context.responseHeader : undefined);
    if (responseHeader !== undefined) {
      dropped = copyAllowedFields(responseHeader, head, dropped);
    }
    const responseTrailer = (foreign?.trailer as Headers | undefined) ?? (context.hasResponseTrailer ? context.responseTrailer : undefined);
    let trailer: OutgoingHttpHeaders;
    if (error === undefined && responseTrailer === undefined) {
      trailer = okTrailer;
    } else {
      const t = new Headers({ "grpc-status": "0" });
      responseTrailer?.forEach((value, key) => t.set(key, value));
      if (error !== undefined) {
        const sendable = encodableError(error, this.#options.logger, rpcName(this.#route.spec.method));
        setTrailerStatus(t, sendable instanceof ConnectError ? sendable : new ConnectError("internal error", Code.Internal, undefined, undefined, error));
      }
      dropped = copyAllowedFields(t, (trailer = {}), dropped);
    }
    if (dropped !== undefined) {
      logDroppedFields(this.#options.logger, rpcName(this.#route.spec.method), dropped);
    }
    const stream = this.#stream as CallStream;
    try {
      stream[kTrailer] = trailer;
      stream.respond(head, { waitForTrailers: true });
      stream.on("wantTrailers", sendTrailer); // (emitted once per stream)
      stream.end(error === undefined ? body : undefined);
    } catch (e) {
      if (!stream.destroyed && !stream.closed) {
        // Not the race with the caller's reset: the call cannot be answered,
        // so end its stream rather than leave the caller waiting.
        this.#options.logger.error({ err: e }, "could not write a response: resetting the stream");
        stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      }
      // Otherwise the stream closed between our check and the write: nobody to answer.
    }
  }
}

// node copies the trailers it is given: one object serves every call.
const okTrailer: OutgoingHttpHeaders = Object.freeze({ "grpc-status": "0" });

function header(headers: IncomingHttpHeaders, name: string): string | null {
  const value = headers[name];
  return typeof value === "string" ? value : Array.isArray(value) ? value.join(", ") : null;
}

function ignore() {}

// connect's encodeEnvelope, in a Buffer from node's pool: a new Uint8Array
// per reply showed in an Echo call's profile.
function envelope(flags: number, data: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(data.byteLength + 5);
  bytes[0] = flags;
  bytes.writeUInt32BE(data.byteLength, 1);
  bytes.set(data, 5);
  return bytes;
}
