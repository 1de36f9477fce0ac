import type { Interceptor, StreamResponse, UnaryResponse } from "@connectrpc/connect";
import type { Logger } from "../../observability/logger.js";
import { encodableError } from "../encodable-error.js";
import { rpcName } from "../rpc-name.js";

/**
 * Applies encodableError to every error a call ends with, thrown or ending
 * its response stream; outermost, so that nothing after it adds an error.
 */
export function encodableErrorsInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    let res: UnaryResponse | StreamResponse;
    try {
      res = await next(req);
    } catch (e) {
      throw encodableError(e, logger, rpcName(req.method));
    }
    return res.stream ? { ...res, message: encodableStreamEnd(res.message, logger, rpcName(req.method)) } : res;
  };
}

async function* encodableStreamEnd<T>(messages: AsyncIterable<T>, logger: Logger, rpc: string): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    throw encodableError(e, logger, rpc);
  }
}
