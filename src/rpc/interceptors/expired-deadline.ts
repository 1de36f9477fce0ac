import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";

/**
 * Request gate that answers DEADLINE_EXCEEDED (with no message, as gRPC
 * servers do) for a call whose deadline has already passed when it arrives,
 * e.g. `grpc-timeout: 1n`. connect-node would otherwise start a ~1 ms timer
 * and might run the handler anyway; the body is never read.
 */
export function rejectExpiredDeadline(ctx: HandlerContext): void {
  const remaining = ctx.timeoutMs();
  if (remaining !== undefined && remaining <= 0) {
    throw new ConnectError("", Code.DeadlineExceeded);
  }
}
