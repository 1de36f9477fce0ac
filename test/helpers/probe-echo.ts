import { setTimeout as delay } from "node:timers/promises";
import { Int32ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import { type Echo, EchoReplySchema } from "../../gen/echo_pb.js";
import { kPeer, kServedBy } from "../../src/rpc/peer.js";

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
        case "unencodable-error":
          // Mistakes a handler can make that only show when the status is
          // encoded: a message cut inside a surrogate pair, a detail whose
          // value does not fit its schema (next to one that does).
          throw new ConnectError("cut in an emoji: \uD83D", Code.FailedPrecondition, { "x-error-meta": "m1" }, [
            { desc: EchoReplySchema, value: { message: "kept" } },
            { desc: Int32ValueSchema, value: { value: "not a number" as unknown as number } },
          ]);
        case "forbidden-fields":
          for (const fields of [ctx.responseHeader, ctx.responseTrailer]) {
            for (const name of forbiddenInHttp2) fields.set(name, "x");
            fields.set("x-kept", "k");
          }
          return { message: "with fields HTTP/2 forbids" };
        case "forbidden-fields-in-error":
          throw new ConnectError("metadata HTTP/2 forbids", Code.Aborted, { connection: "close", upgrade: "h2c", "x-kept": "k" });
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

/** Connection-specific fields (RFC 9113 8.2.2), which node refuses to write. */
export const forbiddenInHttp2 = ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"];

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
