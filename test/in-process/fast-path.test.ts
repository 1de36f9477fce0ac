import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { createContextValues, createServiceImplSpec, type Interceptor } from "@connectrpc/connect";
import { compressionGzip } from "@connectrpc/connect-node";
import { Echo, EchoReplySchema, EchoRequestSchema } from "../../gen/echo_pb.js";
import { RepeatLimitedLog } from "../../src/observability/repeated-lines.js";
import { createGrpcUnaryFastPath } from "../../src/rpc/fast-path/grpc-unary.js";
import { kPeer } from "../../src/rpc/peer.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { silentLogger } from "../helpers/loggers.js";
import { type ProbeRecord, probeEcho } from "../helpers/probe-echo.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";

// The fast path on its own, with interceptors of a kind the server does not
// ship: ones that replace the request with a copy, or answer themselves.

describe("fast path with other interceptors", () => {
  const records: ProbeRecord[] = [];
  const seen: string[] = [];
  // Rebuilds the request with a spread (connect's interceptors may do this)
  // and a changed message.
  const rewrite: Interceptor = (next) => (req) => {
    seen.push(`rewrite ${req.method.name}`);
    if (req.stream || (req.message as { message?: string }).message !== "context-copy") return next(req);
    return next({ ...req, message: create(EchoRequestSchema, { message: "context" }) });
  };
  // Copies the response with a spread.
  const copyResponse: Interceptor = (next) => async (req) => ({ ...(await next(req)) });
  // Answers "short-circuit" itself, with a header and trailer of its own.
  const answer: Interceptor = (next) => async (req) => {
    if (!req.stream && (req.message as { message?: string }).message === "short-circuit") {
      return {
        stream: false,
        service: req.service,
        method: req.method,
        message: create(EchoReplySchema, { message: "from the interceptor" }),
        header: new Headers({ "x-from": "interceptor" }),
        trailer: new Headers({ "x-trailer-from": "interceptor" }),
      } as never;
    }
    return next(req);
  };
  let server: http2.Http2Server;
  let baseUrl = "";
  before(async () => {
    const shutdown = new AbortController();
    const logger = silentLogger();
    const fastPath = createGrpcUnaryFastPath({
      services: [createServiceImplSpec<typeof Echo>(Echo, probeEcho(records))],
      interceptors: [rewrite, copyResponse, answer],
      readMaxBytes: 4096,
      acceptCompression: [compressionGzip],
      compressMinBytes: 1024,
      shutdownSignal: shutdown.signal,
      contextValues: () => createContextValues().set(kPeer, "test-peer"),
      logger,
      repeats: new RepeatLimitedLog(logger),
    });
    server = http2.createServer();
    server.on("stream", (stream, headers) => {
      if (!fastPath(stream, headers)) {
        stream.respond({ ":status": 404 });
        stream.end();
      }
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    baseUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  after(() => server.close());

  const echo = (message: string) => grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message })));
  const reply = (body: Buffer) => fromBinary(EchoReplySchema, body.subarray(5)).message;

  it("a request copied with { ...req } still reaches the handler with its headers, signal and values", async () => {
    const res = await rawGrpcCall(baseUrl, "/echo.Echo/Reply", echo("context-copy"), { "x-probe": "v1" });
    assert.equal(res.trailers["grpc-status"], "0");
    const seenByHandler = JSON.parse(reply(res.body)) as { headers: string[]; aborted: boolean; hasPeer: boolean };
    assert.ok(seenByHandler.headers.includes("x-probe=v1"));
    assert.equal(seenByHandler.aborted, false);
    assert.equal(seenByHandler.hasPeer, true);
    assert.deepEqual(seen.slice(-1), ["rewrite Reply"]);
  });

  it("an interceptor's own response, headers and trailers are what the caller gets", async () => {
    const res = await rawGrpcCall(baseUrl, "/echo.Echo/Reply", echo("short-circuit"));
    assert.equal(res.trailers["grpc-status"], "0");
    assert.equal(reply(res.body), "from the interceptor");
    assert.equal(res.headers["x-from"], "interceptor");
    assert.equal(res.trailers["x-trailer-from"], "interceptor");
    assert.ok(!records.some((r) => r.message === "short-circuit"), "the handler was not called");
  });

  it("a response copied with { ...res } keeps the headers and trailers the handler set", async () => {
    const res = await rawGrpcCall(baseUrl, "/echo.Echo/Reply", echo("headers"));
    assert.equal(res.trailers["grpc-status"], "0");
    assert.equal(res.headers["x-probe-header"], "h1");
    assert.equal(res.trailers["x-probe-trailer"], "t1, t2");
  });

  it("paths it does not serve are left to the caller (here: 404)", async () => {
    const res = await rawGrpcCall(baseUrl, "/echo.Echo/Nope", echo("x"));
    assert.equal(res.headers[":status"], 404);
  });
});
