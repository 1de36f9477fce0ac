import type { Http2Session, IncomingHttpHeaders, ServerHttp2Stream } from "node:http2";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type ContextValues, type HandlerContext } from "@connectrpc/connect";
import { resetCodeError } from "./reset-code.js";

/** What a call context needs from the server; shared by every call. */
export interface CallEnvironment {
  /** Aborted at the end of the shutdown grace period. */
  readonly shutdownSignal: AbortSignal;
  /** The context values of a new call (the peer address, for one), from its connection. */
  readonly contextValues: (session: Http2Session | undefined) => ContextValues;
}

/**
 * The HandlerContext of one call on the fast path. It holds what connect's
 * `createHandlerContext` holds, but builds each costly part (web Headers,
 * the AbortSignal linked to deadline, reset and shutdown, the URL, context
 * values) only when something reads it. Built eagerly, they cost as much as
 * protobuf and HTTP/2 together (docs/performance.md), and most
 * handlers (the Tyk Dispatcher's among them) never read most of them.
 */
export class FastCallContext implements HandlerContext {
  readonly protocolName = "grpc";
  readonly requestMethod = "POST";
  readonly #stream: ServerHttp2Stream;
  // Kept from the start: a stream forgets its session once it is destroyed,
  // and the context values (the peer) are read lazily, possibly after that.
  readonly #session: Http2Session | undefined;
  readonly #headers: IncomingHttpHeaders;
  readonly #env: CallEnvironment;
  readonly #deadline: number | undefined;
  #requestHeader: Headers | undefined;
  #responseHeader: Headers | undefined;
  #responseTrailer: Headers | undefined;
  #values: ContextValues | undefined;
  #controller: AbortController | undefined;
  #cleanup: (() => void) | undefined;

  constructor(
    readonly service: DescService,
    readonly method: DescMethod,
    stream: ServerHttp2Stream,
    headers: IncomingHttpHeaders,
    env: CallEnvironment,
    timeoutMs: number | undefined,
  ) {
    this.#stream = stream;
    this.#session = stream.session;
    this.#headers = headers;
    this.#env = env;
    this.#deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
  }

  /** Milliseconds left until the caller's deadline, if it set one. */
  readonly timeoutMs = (): number | undefined => (this.#deadline === undefined ? undefined : this.#deadline - Date.now());

  /** The request URL, as connect builds it (`http://authority/path`). */
  get url(): string {
    return new URL(this.#headers[":path"] ?? "", `http://${this.#headers[":authority"] ?? ""}`).toString();
  }

  get requestHeader(): Headers {
    return (this.#requestHeader ??= webHeaders(this.#headers));
  }

  get responseHeader(): Headers {
    return (this.#responseHeader ??= new Headers());
  }

  get responseTrailer(): Headers {
    return (this.#responseTrailer ??= new Headers());
  }

  /** Whether a handler or interceptor has touched the response headers or trailers. */
  get hasResponseHeader(): boolean {
    return this.#responseHeader !== undefined;
  }
  get hasResponseTrailer(): boolean {
    return this.#responseTrailer !== undefined;
  }

  get values(): ContextValues {
    return (this.#values ??= this.#env.contextValues(this.#session));
  }

  /**
   * Aborts on the caller's deadline ("the operation timed out"), the caller's
   * RST_STREAM, the end of the shutdown grace period, and when the call ends,
   * with the reasons connect gives.
   */
  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = this.#linkSignal();
    }
    return this.#controller.signal;
  }

  /** Ends the call: aborts its signal if anyone holds it (as connect does when a call completes). */
  end(): void {
    if (this.#controller !== undefined) {
      this.#cleanup!();
      this.#controller.abort();
    }
  }

  #linkSignal(): AbortController {
    const controller = new AbortController();
    const { signal } = controller;
    const shutdown = this.#env.shutdownSignal;
    const stream = this.#stream;
    let timer: NodeJS.Timeout | undefined;
    const abort = (reason: unknown) => {
      if (!signal.aborted) {
        this.#cleanup!();
        controller.abort(reason);
      }
    };
    const onShutdown = () => abort(shutdown.reason);
    const onClose = () => abort(resetCodeError(stream.rstCode));
    this.#cleanup = () => {
      clearTimeout(timer);
      shutdown.removeEventListener("abort", onShutdown);
      stream.off("close", onClose);
    };
    if (shutdown.aborted) {
      abort(shutdown.reason);
    } else if (stream.closed) {
      abort(resetCodeError(stream.rstCode));
    } else {
      shutdown.addEventListener("abort", onShutdown, { once: true });
      stream.once("close", onClose);
      const left = this.timeoutMs();
      if (left !== undefined) {
        const timedOut = () => abort(new ConnectError("the operation timed out", Code.DeadlineExceeded));
        if (left <= 0) {
          timedOut();
        } else {
          timer = setTimeout(timedOut, left);
        }
      }
    }
    return controller;
  }
}

// connect-node's conversion: pseudo-headers dropped, repeated values appended.
function webHeaders(headers: IncomingHttpHeaders): Headers {
  const out = new Headers();
  for (const [name, value] of Object.entries(headers)) {
    if (name.startsWith(":") || value === undefined) {
      continue;
    }
    if (Array.isArray(value)) {
      value.forEach((v) => out.append(name, v));
    } else {
      out.append(name, String(value));
    }
  }
  return out;
}
