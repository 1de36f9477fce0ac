import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Passes a response stream through and calls `done` once when it ends:
 * finished (no error), failed (its error), or stopped early by the consumer
 * (the call was cancelled: CANCELED).
 */
export async function* observeStreamEnd<T>(messages: AsyncIterable<T>, done: (error?: unknown) => void): AsyncIterable<T> {
  let outcome: { error?: unknown } | undefined;
  try {
    yield* messages;
    outcome = {};
  } catch (e) {
    outcome = { error: e };
    throw e;
  } finally {
    done(outcome ? outcome.error : new ConnectError("stream stopped early", Code.Canceled));
  }
}
