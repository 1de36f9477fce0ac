import { ConnectError } from "@connectrpc/connect";
import { setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { Logger } from "../observability/logger.js";

// A handler's ConnectError is encoded only when its call's status is
// written: its message percent-encoded (a lone surrogate, say from a string
// cut in the middle of an emoji, makes encodeURIComponent throw) and its
// details packed as google.protobuf.Any (a detail whose value does not fit
// its schema makes toBinary throw). Thrown there, nothing catches it:
// connect's path then never answers the call, and the fast path's throw
// would take the process down. So an error that would not encode is
// replaced, before it gets there, by one that does.

/**
 * The error as it can be sent: itself, or (when its message or a detail
 * would not encode) a ConnectError with the same code, metadata and cause,
 * its message made well-formed (lone surrogates become U+FFFD) and only the
 * details that encode; what was changed is logged.
 */
export function encodableError(error: unknown, logger: Logger, rpc: string): unknown {
  if (!(error instanceof ConnectError) || (error.details.length === 0 && error.rawMessage.isWellFormed())) {
    return error; // the common case; anything not a ConnectError goes out as "internal error"
  }
  const kept = error.details.filter((detail) => {
    try {
      const alone = new ConnectError("", error.code);
      alone.details = [detail];
      setTrailerStatus(new Headers(), alone);
      return true;
    } catch {
      return false;
    }
  });
  const wellFormed = error.rawMessage.isWellFormed();
  if (kept.length === error.details.length && wellFormed) {
    return error;
  }
  // (An error parsed from the wire relays no metadata: so neither does its replacement.)
  const safe = new ConnectError(error.rawMessage.toWellFormed(), error.code, error.isWireError ? undefined : error.metadata, undefined, error.cause);
  safe.details = kept;
  logger.error(
    { rpc, code: error.code, droppedDetails: error.details.length - kept.length, messageRepaired: !wellFormed },
    "the call's error could not be encoded as it was: sent without what did not encode",
  );
  return safe;
}
