import { Code, ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { callEndInterceptor } from "../../observability/call-end.js";
import type { Logger } from "../../observability/logger.js";
import { kServedBy, peerAddress } from "../peer.js";
import { rpcName } from "../rpc-name.js";

// Codes that describe the caller's request or the call's fate, not a fault
// of this server: logged as warnings. Everything else is an error.
const clientCodes = new Set([
  Code.Canceled,
  Code.InvalidArgument,
  Code.DeadlineExceeded,
  Code.NotFound,
  Code.AlreadyExists,
  Code.PermissionDenied,
  Code.ResourceExhausted,
  Code.FailedPrecondition,
  Code.OutOfRange,
  Code.Unauthenticated,
]);

/**
 * Logs every call's outcome: failures always (warn for the caller's errors,
 * error with the cause for the server's), successes at debug level with
 * their duration. Streams are logged when they end.
 */
export function loggingInterceptor(logger: Logger): Interceptor {
  const done = (req: UnaryRequest | StreamRequest, started: number, error?: unknown) => {
    if (error === undefined && !logger.isLevelEnabled("debug")) {
      return; // the common case: nothing to build
    }
    const rpc = rpcName(req.method);
    const ms = Math.round((performance.now() - started) * 1000) / 1000;
    if (error === undefined) {
      logger.debug({ rpc, protocol: req.header.get("content-type"), via: req.contextValues.get(kServedBy), ms }, "rpc ok");
      return;
    }
    const err = ConnectError.from(error);
    const fields = { rpc, code: Code[err.code], message: err.rawMessage, peer: peerAddress(req.contextValues), ms };
    if (clientCodes.has(err.code)) {
      logger.warn(fields, "rpc failed");
    } else {
      // A non-ConnectError is a handler bug; the caller only sees "internal error".
      logger.error({ ...fields, err: error instanceof ConnectError ? (err.cause ?? err) : error }, "rpc failed");
    }
  };
  return callEndInterceptor(
    (req) => ({ req, started: performance.now() }),
    ({ req, started }, error) => done(req, started, error),
  );
}
