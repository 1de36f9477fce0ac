import { Code, ConnectError, type Interceptor, type StreamRequest, type StreamResponse, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";

/** What an observer does when a call starts, and once when it ends. */
export interface CallObserver<S = unknown> {
  start(req: UnaryRequest | StreamRequest): S;
  end(state: S, error?: unknown): void;
}

// The observer behind an interceptor made here, for a path that can call it
// without a promise layer per interceptor (the fast path's unary calls).
const kObserver = Symbol("call observer");

/**
 * An interceptor that runs `start` when a call begins and `end` once when
 * it ends, with its error if it failed: unary calls when the response is
 * ready, streams when their last message is sent, or CANCELED when the
 * consumer stops early. For observers (logging, metrics) that must see
 * every call's outcome exactly once.
 */
export function callEndInterceptor<S>(start: (req: UnaryRequest | StreamRequest) => S, end: (state: S, error?: unknown) => void): Interceptor {
  const interceptor: Interceptor = (next) => async (req) => {
    const state = start(req);
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (e) {
      end(state, e);
      throw e;
    }
    if (!res.stream) {
      end(state);
      return res;
    }
    return { ...res, message: observeStreamEnd(res.message, (error) => end(state, error)) };
  };
  const observer: CallObserver<S> = { start, end };
  return Object.assign(interceptor, { [kObserver]: observer });
}

/** The start and end of an interceptor made by callEndInterceptor; undefined for any other. */
export function callObserverOf(interceptor: Interceptor): CallObserver | undefined {
  return (interceptor as { [kObserver]?: CallObserver })[kObserver];
}

async function* observeStreamEnd<T>(messages: AsyncIterable<T>, done: (error?: unknown) => void): AsyncIterable<T> {
  let outcome: { error?: unknown } | undefined;
  try {
    yield* messages;
    outcome = {};
  } catch (e) {
    outcome = { error: e };
    throw e;
  } finally {
    // Neither finished nor threw: the consumer stopped early (the call was cancelled).
    done(outcome ? outcome.error : new ConnectError("stream stopped early", Code.Canceled));
  }
}
