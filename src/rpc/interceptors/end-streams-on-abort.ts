import { ConnectError, type Interceptor } from "@connectrpc/connect";

/**
 * Ends a streaming call's response as soon as the call is aborted (deadline,
 * client cancel, or the end of the shutdown grace period), with the abort's
 * reason as status, even when the handler is stuck awaiting its input or a
 * slow source. Without this, a handler blocked on `for await (req of reqs)`
 * never notices and the caller only sees its connection torn down.
 */
export const endStreamsOnAbort: Interceptor = (next) => (req) => {
  if (!req.stream) {
    return next(req); // unary calls end with their one reply: nothing to add
  }
  return next(req).then((res) => (res.stream ? { ...res, message: untilAborted(res.message, req.signal) } : res));
};

async function* untilAborted<T>(messages: AsyncIterable<T>, signal: AbortSignal): AsyncIterable<T> {
  const iterator = messages[Symbol.asyncIterator]();
  try {
    for (;;) {
      const result = await nextUnlessAborted(iterator, signal);
      if (result.done) {
        return;
      }
      yield result.value;
    }
  } finally {
    // Not awaited: the handler may be the thing that is stuck.
    iterator.return?.().catch(() => undefined);
  }
}

// The next message, or the abort's reason, whichever comes first. A fresh
// promise and listener per message, both gone once it settles: racing each
// message against one promise that lives as long as the stream would keep
// every message reachable from it: memory growing with every message of a
// long listing.
function nextUnlessAborted<T>(iterator: AsyncIterator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  if (signal.aborted) {
    return Promise.reject(ConnectError.from(signal.reason));
  }
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(ConnectError.from(signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    iterator.next().then(
      (result) => {
        signal.removeEventListener("abort", onAbort);
        resolve(result);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}
