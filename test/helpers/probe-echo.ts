import { setTimeout as delay } from "node:timers/promises";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { EchoReplySchema, type Echo } from "../../gen/echo_pb.js";
import { kPeer, kServedBy } from "../../src/peer.js";

/** What the probe saw of one call, for the tests to compare. */
export interface ProbeRecord {
  readonly message: string;
  readonly servedBy: string;
  /** The abort reason's code, when the call's signal fired while the probe waited on it. */
  abortCode?: string;
}

/**
 * An Echo.Reply implementation whose behaviour is picked by the request's
 * message, to drive a server through the cases a handler can produce:
 * errors with details and metadata, thrown non-ConnectErrors, response
 * headers and trailers, big replies, slow replies that honour the signal,
 * and a reply describing what the handler saw of its context.
 */
export function probeEcho(records: ProbeRecord[]): ServiceImpl<typeof Echo> {
  return {
    async reply(req, ctx) {
      const record: ProbeRecord = { message: req.message, servedBy: ctx.values.get(kServedBy) };
      records.push(record);
      switch (req.message) {
        case "error-details":
          throw new ConnectError("precondition failed: ünïcode, 100% sure", Code.FailedPrecondition, { "x-error-meta": "m1" }, [
            { desc: EchoReplySchema, value: { message: "detail" } },
          ]);
        case "throw":
          throw new Error("a handler bug");
        case "headers":
          ctx.responseHeader.set("x-probe-header", "h1");
          ctx.responseTrailer.set("x-probe-trailer", "t1");
          ctx.responseTrailer.append("x-probe-trailer", "t2");
          return { message: "with headers" };
        case "headers-then-error":
          ctx.responseHeader.set("x-probe-header", "h1");
          ctx.responseTrailer.set("x-probe-trailer", "t1");
          throw new ConnectError("failed after setting headers", Code.Aborted);
        case "big":
          return { message: "b".repeat(4000) };
        case "context":
          return { message: describeContext(ctx) };
        case "wait-for-abort":
          return waitForAbort(ctx, record);
        default:
          return { message: `You said: ${req.message}` };
      }
    },
  };
}

function describeContext(ctx: HandlerContext): string {
  const headers: string[] = [];
  ctx.requestHeader.forEach((value, key) => headers.push(`${key}=${value}`));
  return JSON.stringify({
    url: ctx.url.replace(/:\d+\//, ":PORT/"), // the two servers of a comparison differ in port
    method: ctx.requestMethod,
    protocol: ctx.protocolName,
    service: ctx.service.typeName,
    rpc: ctx.method.name,
    headers: headers.filter((h) => !h.startsWith("user-agent=")),
    hasTimeout: ctx.timeoutMs() !== undefined,
    aborted: ctx.signal.aborted,
    hasPeer: ctx.values.get(kPeer) !== undefined,
  });
}

// Waits (at most 5 s) for the call's signal, records why it fired, and
// answers with that reason, as a well-behaved handler does.
async function waitForAbort(ctx: HandlerContext, record: ProbeRecord): Promise<{ message: string }> {
  try {
    await delay(5000, undefined, { signal: ctx.signal });
  } catch {
    const err = ConnectError.from(ctx.signal.reason);
    record.abortCode = Code[err.code];
    throw err;
  }
  return { message: "never aborted" };
}
