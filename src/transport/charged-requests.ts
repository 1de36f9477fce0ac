import type { IncomingMessage, ServerResponse } from "node:http";
import { constants, type Http2ServerRequest, type Http2ServerResponse } from "node:http2";
import { type ConnectionMemory, runWithCallMemory } from "./memory-budget.js";

type NodeRequest = IncomingMessage | Http2ServerRequest;
type NodeResponse = ServerResponse | Http2ServerResponse;
type NodeHandler = (req: NodeRequest, res: NodeResponse) => void;
type WriteCallback = (error?: Error | null) => void;

/**
 * Counts what connect's path holds for a request against the memory budget
 * (memory-budget.ts): the body's chunks as connect reads them (past the
 * budget the read fails with RESOURCE_EXHAUSTED, which connect answers),
 * decompressed messages (found through the async context), and each reply
 * chunk until it has been sent. A reply chunk past the budget cannot be
 * refused with a status (connect has sent the response head by then): the
 * call is reset instead (RST_STREAM ENHANCE_YOUR_CALM, or the HTTP/1.1
 * connection closed) and `onRefusedReply` told. Everything is given back
 * when the response closes. Requests on a connection without an account
 * pass as they are.
 */
export function chargeRequests(
  handler: NodeHandler,
  memoryOf: (req: NodeRequest) => ConnectionMemory | undefined,
  onRefusedReply: (req: NodeRequest, reason: string) => void,
): NodeHandler {
  return (req, res) => {
    const connection = memoryOf(req);
    if (connection === undefined) {
      return handler(req, res);
    }
    const memory = connection.call();
    // connect reads the body with for-await; each chunk is taken as it does.
    const chunks = req[Symbol.asyncIterator].bind(req);
    req[Symbol.asyncIterator] = async function* () {
      for await (const chunk of chunks()) {
        memory.take((chunk as Buffer).length);
        yield chunk;
      }
    };
    const write = res.write.bind(res) as (chunk: unknown, encoding?: unknown, callback?: WriteCallback) => boolean;
    res.write = ((chunk: Uint8Array | string, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback) => {
      const done = typeof encoding === "function" ? encoding : callback;
      const n = typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
      try {
        memory.take(n);
      } catch (e) {
        onRefusedReply(req, (e as Error).message);
        if ("stream" in res) res.stream.close(constants.NGHTTP2_ENHANCE_YOUR_CALM);
        else res.destroy();
        // The code connect takes for a stream its client gave up on: the call just ends.
        const error = Object.assign(new Error("reply refused: server memory budget"), { code: "ERR_STREAM_DESTROYED" });
        process.nextTick(() => done?.(error));
        return false;
      }
      // A write's callback runs once its bytes have gone out (flow control permitting).
      const sent: WriteCallback = (error) => {
        memory.release(n);
        done?.(error);
      };
      return typeof encoding === "function" || encoding === undefined ? write(chunk, sent) : write(chunk, encoding, sent);
    }) as typeof res.write;
    res.once("close", () => memory.releaseAll());
    runWithCallMemory(memory, handler, req, res);
  };
}
