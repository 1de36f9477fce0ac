import { strict as assert } from "node:assert";
import * as http2 from "node:http2";
import * as net from "node:net";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { EventSchema, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { EchoRequestSchema } from "../../gen/echo_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { rawHttp1 } from "../helpers/raw-http1.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { type ServerProcess, startServerProcess, useServerProcess } from "../helpers/server-process.js";

// Requests no well-behaved client sends, on every listener: each gets a
// clear answer and a log line, and the server keeps serving everyone else.

const echo = grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "still here" })));

async function stillServing(server: ServerProcess): Promise<void> {
  assert.equal(server.child.exitCode, null, "the server is still running");
  const res = await rawGrpcCall(server.baseUrl, "/echo.Echo/Reply", echo);
  assert.equal(res.trailers["grpc-status"], "0");
}

const jsonEcho = (host: string, version = "1.1") =>
  `POST /echo.Echo/Reply HTTP/${version}\r\n${host}connection: close\r\ncontent-type: application/json\r\ncontent-length: 17\r\n\r\n{"message":"h1"}\n`;

/** One HTTP/2 request with exactly these pseudo-headers (node's client sends :authority as given). */
function h2Request(baseUrl: string, headers: http2.OutgoingHttpHeaders, body: Uint8Array | string): Promise<{ status: number | undefined; text: string }> {
  const session = http2.connect(baseUrl);
  return new Promise((resolve, reject) => {
    session.on("error", reject);
    const req = session.request({ ":method": "POST", ...headers });
    let status: number | undefined;
    const chunks: Buffer[] = [];
    req.on("response", (h) => (status = Number(h[":status"])));
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("error", reject);
    req.on("close", () => {
      session.close();
      resolve({ status, text: Buffer.concat(chunks).toString() });
    });
    if (body.length === 0) req.end();
    else req.end(body);
  });
}

describe("malformed request targets", () => {
  const server = useServerProcess(["--http-listen", "127.0.0.1:0"]);
  const listeners = () =>
    [
      ["--http-listen", server().httpBaseUrl!.slice("http://".length)],
      ["the h2c port (HTTP/1.1)", server().address],
    ] as const;

  it("HTTP/1.1 `GET //[` (a target `new URL` rejects): 400 and a log line on both listeners; the server stays up", async () => {
    for (const [name, address] of listeners()) {
      const res = await rawHttp1(address, "GET //[ HTTP/1.1\r\nHost: x\r\n\r\n");
      assert.equal(res.status, 400, `${name}: ${res.text}`);
      await server().waitForLog((l) => l.msg === "bad request" && l.path === "//[" && l.reason === "malformed request target");
      await stillServing(server());
    }
  });

  it("HTTP/1.1 to an RPC path with a Host that is not an authority (`[`, `a:99999`): 400 and a log line", async () => {
    for (const [name, address] of listeners()) {
      for (const host of ["[", "a:99999"]) {
        const res = await rawHttp1(address, jsonEcho(`Host: ${host}\r\n`));
        assert.equal(res.status, 400, `${name}, Host ${host}: ${res.text}`);
        await server().waitForLog((l) => l.msg === "bad request" && l.host === host && l.reason === "malformed authority");
      }
      await stillServing(server());
    }
  });

  it("HTTP/1.0 without Host, and HTTP/1.1 with an empty Host, are served (the authority defaults to localhost)", async () => {
    for (const [name, address] of listeners()) {
      for (const request of [jsonEcho("", "1.0"), jsonEcho("Host:\r\n")]) {
        const res = await rawHttp1(address, request);
        assert.equal(res.status, 200, `${name}: ${res.text}`);
        assert.match(res.text, /You said: h1/);
      }
    }
  });

  it("HTTP/2: a malformed :authority on the fast path and on connect's, and a path `//[`: 400 and a log line", async () => {
    const cases = [
      { ":authority": "[", ":path": "/echo.Echo/Reply", "content-type": "application/grpc", reason: "malformed authority" },
      { ":authority": "[", ":path": "/echo.Echo/Reply", "content-type": "application/json", reason: "malformed authority" },
      { ":authority": "999.1.1.1", ":path": "/echo.Echo/Reply", "content-type": "application/json", reason: "malformed authority" },
      { ":authority": "localhost", ":path": "//[", "content-type": "application/json", reason: "malformed request target" },
    ];
    for (const { reason, ...headers } of cases) {
      const res = await h2Request(server().baseUrl, headers, headers["content-type"] === "application/json" ? "{}" : echo);
      assert.equal(res.status, 400, JSON.stringify(headers));
      await server().waitForLog((l) => l.msg === "bad request" && l.protocol === "HTTP/2" && l.path === headers[":path"] && l.reason === reason);
    }
    await stillServing(server());
  });

  it("an HTTP/1.1 request node cannot parse: 400 and a log line (node's default writes none)", async () => {
    for (const [name, address] of listeners()) {
      const res = await rawHttp1(address, "GARBAGE\r\n\r\n");
      assert.equal(res.status, 400, `${name}: ${res.text}`);
    }
    await server().waitForLog((l) => l.msg === "bad HTTP/1.1 request" && l.code === "HPE_INVALID_METHOD");
    await stillServing(server());
  });
});

describe("log integrity", () => {
  const server = useServerProcess(["--log-level", "info"]);

  it("caller data that looks like the server's deferred-Object field is logged as data: valid JSON, nothing decoded or unmasked", async () => {
    // An Object whose Authorization a forged "unmasked" field would have written into the log.
    const forged = Buffer.from(toBinary(ObjectSchema, create(ObjectSchema, { request: { headers: { Authorization: "SECRET-forged" } } }))).toString("base64");
    const payload = JSON.stringify({
      "coprocess.Object:base64": 'quote " inside',
      "coprocess.Object:base64:unmasked": forged,
      message: { Type: "AuthFailure", Meta: { Key: "k" } },
      handler_name: "logEvent",
    });
    const res = await rawGrpcCall(server().baseUrl, "/coprocess.Dispatcher/DispatchEvent", grpcFrame(toBinary(EventSchema, create(EventSchema, { payload }))));
    assert.equal(res.trailers["grpc-status"], "0");
    const line = await server().waitForLog((l) => l.msg === "received event");
    const event = line.event as Record<string, unknown>;
    assert.equal(event["coprocess.Object:base64"], 'quote " inside');
    assert.equal(event["coprocess.Object:base64:unmasked"], forged);
    assert.equal("object" in line, false, "no Object was made of the caller's text");
    await stillServing(server());
    assert.deepEqual(
      server().lines.filter((l) => "raw" in l),
      [],
      "every line is JSON",
    );
    assert.ok(!server().stdout().includes("SECRET-forged"));
  });
});

describe("refusal lines", () => {
  const server = useServerProcess(["--http-listen", "127.0.0.1:0"]);

  /** Sends half of a message, then drops the connection. Returns the client's address. */
  async function dropMidUpload(baseUrl: string, contentType: string): Promise<string> {
    const session = http2.connect(baseUrl);
    session.on("error", () => undefined);
    await new Promise((r) => session.once("connect", r));
    const local = `127.0.0.1:${(session.socket as net.Socket).localPort}`;
    const req = session.request({ ":method": "POST", ":path": "/echo.Echo/Reply", "content-type": contentType });
    req.on("error", () => undefined);
    await new Promise<void>((r) => req.write(grpcFrame(Buffer.alloc(1000, 0x41), 0, 100_000), () => r()));
    await new Promise((r) => setTimeout(r, 200)); // the server has the first bytes
    session.destroy();
    return local;
  }

  it("a client that disconnects mid-upload is logged as CANCELED with its peer, on the fast path and connect's", async () => {
    for (const contentType of ["application/grpc", "application/grpc-web"]) {
      const peer = await dropMidUpload(server().baseUrl, contentType);
      const line = await server().waitForLog((l) => l.msg === "rpc refused" && l.peer === peer);
      assert.equal(line.code, "Canceled", `${contentType}: ${JSON.stringify(line)}`);
    }
    // gRPC-Web over HTTP/1.1 on --http-listen.
    const socket = net.connect(Number(server().httpBaseUrl!.split(":")[2]), "127.0.0.1");
    await new Promise((r) => socket.once("connect", r));
    const peer = `127.0.0.1:${socket.localPort}`;
    socket.write("POST /echo.Echo/Reply HTTP/1.1\r\nHost: x\r\ncontent-type: application/grpc-web\r\ncontent-length: 100005\r\n\r\n\0\0\x01\x86\xa0AAAA");
    await new Promise((r) => setTimeout(r, 200));
    socket.destroy();
    const line = await server().waitForLog((l) => l.msg === "rpc refused" && l.peer === peer);
    assert.equal(line.code, "Canceled", JSON.stringify(line));
  });

  it("refusals on connect's path carry the peer: Connect and gRPC-Web over HTTP/2, gRPC-Web on --http-listen", async () => {
    const h2 = await h2Request(server().baseUrl, { ":path": "/nope.Nope/Nothing", "content-type": "application/grpc-web" }, "");
    assert.equal(h2.status, 200);
    const connectGet = await h2Request(server().baseUrl, { ":method": "GET", ":path": "/echo.Echo/Reply", "content-type": "application/json" }, "");
    assert.equal(connectGet.status, 405);
    const web = await fetch(`${server().httpBaseUrl}/nope.Nope/Nothing`, { method: "POST", headers: { "content-type": "application/grpc-web" } });
    assert.equal(web.headers.get("grpc-status"), "12");
    for (const [path, method] of [
      ["/nope.Nope/Nothing", "POST"],
      ["/echo.Echo/Reply", "GET"],
    ]) {
      const lines = await server().waitForLog((l) => l.msg === "rpc refused" && l.path === path && l.method === method);
      assert.match(String(lines.peer), /^127\.0\.0\.1:\d+$/, JSON.stringify(lines));
    }
    assert.equal(server().lines.filter((l) => l.msg === "rpc refused" && l.path === "/nope.Nope/Nothing" && l.peer === undefined).length, 0);
  });

  it("the same refusal repeated 500 times: at most 20 lines, and a line with the count of the rest", async () => {
    const noisy = await startServerProcess(["--log-level", "info"]);
    try {
      const session = http2.connect(noisy.baseUrl);
      session.on("error", () => undefined);
      // No message at all: UNIMPLEMENTED "missing input message", once per call.
      const calls = Array.from(
        { length: 500 },
        () =>
          new Promise<void>((resolve) => {
            const req = session.request({ ":method": "POST", ":path": "/echo.Echo/Reply", "content-type": "application/grpc", te: "trailers" });
            req.on("error", () => resolve());
            req.on("close", () => resolve());
            req.resume();
            req.end();
          }),
      );
      await Promise.all(calls);
      session.close();
      const missing = (l: Record<string, unknown>) => l.msg === "rpc refused" && /missing input message/.test(String(l.message));
      await noisy.waitForLog((l) => missing(l) && noisy.lines.filter(missing).length >= 20);
      assert.equal(await noisy.stop(), 0);
      const lines = noisy.lines.filter(missing);
      assert.ok(lines.length <= 21, `${lines.length} lines`);
      assert.equal(
        lines.reduce((n, l) => n + (Number(l.repeated) || 1), 0),
        500,
        "every refusal is accounted for",
      );
    } finally {
      await noisy.stop();
    }
  });
});
