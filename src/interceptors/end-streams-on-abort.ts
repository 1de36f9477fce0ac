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
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(ConnectError.from(signal.reason));
    if (signal.aborted) {
      onAbort();
    } else {
      signal.addEventListener("abort", onAbort, { once: true });
    }
  });
  aborted.catch(() => undefined); // observed through the race below
  try {
    for (;;) {
      const result = await Promise.race([iterator.next(), aborted]);
      if (result.done) {
        return;
      }
      yield result.value;
    }
  } finally {
    signal.removeEventListener("abort", onAbort!);
    // Not awaited: the handler may be the thing that is stuck.
    iterator.return?.().catch(() => undefined);
  }
}
