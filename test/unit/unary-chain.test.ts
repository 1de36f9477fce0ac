import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, createRouterTransport, type Interceptor, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { Echo, EchoReplySchema, EchoRequestSchema } from "../../gen/echo_pb.js";
import { callEndInterceptor } from "../../src/observability/call-end.js";
import { chainUnary } from "../../src/rpc/fast-path/unary-chain.js";
import { isPromiseLike } from "../../src/util/maybe-promise.js";

// The fast path calls observers (callEndInterceptor) directly instead of
// through a promise per interceptor. They must still run in connect's
// order and at connect's moments, mixed with interceptors of other kinds.

function recorder() {
  const events: string[] = [];
  const observer = (name: string) =>
    callEndInterceptor(
      () => events.push(`start ${name}`),
      (_, error) => events.push(error === undefined ? `end ${name}` : `end ${name}: ${ConnectError.from(error).code}`),
    );
  const around: Interceptor = (next) => async (req) => {
    events.push("before generic");
    try {
      return await next(req);
    } finally {
      events.push("after generic");
    }
  };
  return { events, interceptors: [observer("outer"), around, observer("inner")] };
}

// The behaviour of the implementation: "fail" throws, "later" answers asynchronously.
function reply(message: string, events: string[]) {
  events.push(`impl ${message}`);
  if (message === "fail") {
    throw new ConnectError("no", Code.FailedPrecondition);
  }
  const answer = { message: `You said: ${message}` };
  return message === "later" ? Promise.resolve(answer) : answer;
}

async function viaConnect(message: string): Promise<string[]> {
  const { events, interceptors } = recorder();
  const transport = createRouterTransport(({ service }) => service(Echo, { reply: (req) => reply(req.message, events) }), { router: { interceptors } });
  await createClient(Echo, transport)
    .reply({ message })
    .catch(() => undefined);
  return events;
}

async function viaChain(message: string, interceptors?: Interceptor[]): Promise<{ events: string[]; sync: boolean }> {
  const rec = recorder();
  const events = rec.events;
  const invoke = chainUnary((req) => {
    const out = reply((req.message as unknown as { message: string }).message, events);
    const wrap = (m: { message: string }) => ({ stream: false, message: create(EchoReplySchema, m) }) as unknown as UnaryResponse;
    return isPromiseLike(out) ? out.then(wrap) : wrap(out);
  }, interceptors ?? rec.interceptors);
  const req = { stream: false, service: Echo, method: Echo.method.reply, message: create(EchoRequestSchema, { message }) } as unknown as UnaryRequest;
  let result: ReturnType<typeof invoke>;
  try {
    result = invoke(req);
  } catch {
    return { events, sync: true };
  }
  const sync = !isPromiseLike(result);
  await Promise.resolve(result).catch(() => undefined);
  return { events, sync };
}

describe("chainUnary (the fast path's interceptor chain)", () => {
  for (const message of ["hello", "later", "fail"]) {
    it(`runs observers and other interceptors in connect's order: ${message}`, async () => {
      const expected = await viaConnect(message);
      assert.ok(expected.includes(`impl ${message}`), expected.join(", "));
      assert.deepEqual((await viaChain(message)).events, expected);
    });
  }

  it("with only observers and a synchronous implementation, a call has no promise", async () => {
    const events: string[] = [];
    const observer = callEndInterceptor(
      () => events.push("start"),
      () => events.push("end"),
    );
    const result = await viaChain("hello", [observer, observer]);
    assert.equal(result.sync, true);
    assert.deepEqual(events, ["start", "start", "end", "end"]);
    // A promise in the implementation, or an interceptor of another kind, makes it one.
    assert.equal((await viaChain("later", [observer])).sync, false);
    assert.equal((await viaChain("hello", recorder().interceptors)).sync, false);
  });
});
