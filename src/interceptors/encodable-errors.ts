import type { Interceptor, StreamRequest, UnaryRequest } from "@connectrpc/connect";
import { encodableError } from "../encodable-error.js";
import type { Logger } from "../logger.js";

/**
 * Applies encodableError to every error a call ends with, thrown or ending
 * its response stream; outermost, so that nothing after it adds an error.
 */
export function encodableErrorsInterceptor(logger: Logger): Interceptor {
  return (next) => async (req) => {
    let res;
    try {
      res = await next(req);
    } catch (e) {
      throw encodableError(e, logger, rpcName(req));
    }
    return res.stream ? { ...res, message: encodableStreamEnd(res.message, logger, req) } : res;
  };
}

async function* encodableStreamEnd<T>(messages: AsyncIterable<T>, logger: Logger, req: UnaryRequest | StreamRequest): AsyncIterable<T> {
  try {
    yield* messages;
  } catch (e) {
    throw encodableError(e, logger, rpcName(req));
  }
}

// Built only when there is an error to log.
function rpcName(req: UnaryRequest | StreamRequest): string {
  return `${req.service.typeName}/${req.method.name}`;
}
