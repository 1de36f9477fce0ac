import { strict as assert } from "node:assert";
import { once } from "node:events";
import * as http from "node:http";
import * as http2 from "node:http2";
import * as net from "node:net";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { EchoRequestSchema } from "../../gen/echo_pb.js";
import { Users } from "../../gen/users_pb.js";
import { MemoryUserStore } from "../../src/users/memory-user-store.js";
import type { StoredUser } from "../../src/users/user-store.js";
import { startApp } from "../helpers/app.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { capturingLogger } from "../helpers/loggers.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { type ServerProcess, startServerProcess, useServerProcess } from "../helpers/server-process.js";

// Protocol abuse and handler faults: each gets a clear answer and a log
// line, and the server keeps serving everyone else.

const echo = grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "still here" })));
const plugins = ["--plugin", "dist/test/fixtures/tyk-test-plugins.js"];

async function stillServing(server: ServerProcess): Promise<void> {
  const res = await rawGrpcCall(server.baseUrl, "/echo.Echo/Reply", echo);
  assert.equal(res.trailers["grpc-status"], "0");
}

function http1(server: ServerProcess, path: string, options: http.RequestOptions, body?: Buffer | string) {
  return new Promise<{ status: number | undefined; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string>; body: Buffer }>((resolve, reject) => {
    const req = http.request(`${server.baseUrl}${path}`, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => resolve({ status: res.statusCode, headers: res.headers, trailers: res.trailers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const refusedLine = (server: ServerProcess, pred: (l: Record<string, unknown>) => boolean) => server.waitForLog((l) => l.msg === "rpc refused" && pred(l));

describe("protocol abuse", () => {
  const server = useServerProcess(plugins);

  it("HTTP/1.1 on the h2c port is served as HTTP/1.1: Connect JSON and gRPC work; GET on a gRPC path is 405 and logged", async () => {
    const json = await http1(server(), "/echo.Echo/Reply", { method: "POST", headers: { "content-type": "application/json" } }, '{"message":"h1"}');
    assert.equal(json.status, 200);
    assert.deepEqual(JSON.parse(json.body.toString()), { message: "You said: h1" });
    const grpc = await http1(server(), "/echo.Echo/Reply", { method: "POST", headers: { "content-type": "application/grpc", te: "trailers" } }, echo);
    assert.equal(grpc.trailers["grpc-status"], "0");
    const get = await http1(server(), "/echo.Echo/Reply", { method: "GET" });
    assert.equal(get.status, 405);
    await refusedLine(server(), (l) => l.method === "GET" && l.httpStatus === 405);
  });

  it("undecodable JSON over Connect: 400 with the Connect error shape, and a log line", async () => {
    const res = await http1(server(), "/echo.Echo/Reply", { method: "POST", headers: { "content-type": "application/json" } }, "{not json");
    assert.equal(res.status, 400);
    assert.equal(JSON.parse(res.body.toString()).code, "invalid_argument");
    await refusedLine(server(), (l) => l.httpStatus === 400 && l.protocol === "application/json");
  });

  it("a request without te: trailers is served (as grpc-go serves it)", async () => {
    const res = await rawGrpcCall(server().baseUrl, "/echo.Echo/Reply", echo, { te: undefined });
    assert.equal(res.trailers["grpc-status"], "0");
  });

  it("wrong content-type and unknown services over HTTP/2 are refused and logged", async () => {
    const wrong = await rawGrpcCall(server().baseUrl, "/echo.Echo/Reply", echo, { "content-type": "text/plain" });
    assert.equal(wrong.headers[":status"], 415);
    await refusedLine(server(), (l) => l.protocol === "text/plain" && l.httpStatus === 415);
    const unknown = await rawGrpcCall(server().baseUrl, "/nope.Nope/Nothing", echo);
    assert.equal(unknown.headers["grpc-status"], "12");
    await refusedLine(server(), (l) => l.path === "/nope.Nope/Nothing" && l.grpcStatus === 12 && /unknown method/.test(String(l.message)));
  });

  it("a client holding hundreds of streams open without sending does not stall other connections", async () => {
    const hog = http2.connect(server().baseUrl);
    hog.on("error", () => undefined);
    const held = Array.from({ length: 300 }, () => {
      const s = hog.request({ ":method": "POST", ":path": "/echo.Echo/Reply", "content-type": "application/grpc", te: "trailers" });
      s.on("error", () => undefined);
      s.write(Buffer.from([0, 0, 0])); // part of a frame header, then nothing
      return s;
    });
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    await stillServing(server());
    assert.ok(Date.now() - started < 1000);
    hog.destroy();
    await Promise.all(held.map((s) => (s.closed ? undefined : once(s, "close"))));
    await stillServing(server());
  });

  it("connections closed mid-frame (in the preface, the first headers, or a message) leave the server serving", async () => {
    const [host, port] = server().address.split(":") as [string, string];
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    const settings = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
    const cuts = [
      preface.subarray(0, 10),
      Buffer.concat([preface, settings, Buffer.from([0, 0, 50, 1, 4, 0, 0, 0, 1, 1, 2, 3])]), // HEADERS promising 50 bytes, 3 sent
    ];
    for (const bytes of cuts) {
      const socket = net.connect(Number(port), host);
      socket.on("error", () => undefined);
      await once(socket, "connect");
      socket.write(bytes);
      await new Promise((r) => setTimeout(r, 50));
      socket.destroy();
    }
    // A message cut short by a lost connection, after the call began.
    const session = http2.connect(server().baseUrl);
    session.on("error", () => undefined);
    const req = session.request({ ":method": "POST", ":path": "/echo.Echo/Reply", "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => undefined);
    req.write(echo.subarray(0, 7));
    await new Promise((r) => setTimeout(r, 50));
    session.destroy();
    await stillServing(server());
    await server().waitForLog((l) => l.msg === "connection closed before its first request");
  });

  it("a client reset in the middle of a server stream is logged as CANCELED", async () => {
    const session = http2.connect(server().baseUrl);
    session.on("error", () => undefined);
    const req = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Watch", "content-type": "application/grpc", te: "trailers" });
    req.on("error", () => undefined);
    req.end(grpcFrame(new Uint8Array()));
    await once(req, "data");
    req.close(http2.constants.NGHTTP2_CANCEL);
    await server().waitForLog((l) => l.rpc === "grpc.health.v1.Health/Watch" && l.code === "Canceled");
    session.close();
    await stillServing(server());
  });
});

describe("handler faults", () => {
  const server = useServerProcess(plugins);
  const dispatch = (hookName: string) =>
    rawGrpcCall(
      server().baseUrl,
      "/coprocess.Dispatcher/Dispatch",
      grpcFrame(toBinary(ObjectSchema, create(ObjectSchema, { hookType: HookType.Pre, hookName, request: { url: "/" } }))),
    );

  for (const hook of ["throws", "rejects"]) {
    it(`a plugin that ${hook === "throws" ? "throws" : "returns a rejected promise"}: INTERNAL with its name, logged with the cause`, async () => {
      const res = await dispatch(hook);
      assert.equal(res.trailers["grpc-status"], "13");
      assert.match(decodeURIComponent(String(res.trailers["grpc-message"])), new RegExp(`plugin "tyk-test-plugins" failed in pre hook "${hook}"`));
      const line = await server().waitForLog((l) => l.msg === "plugin failed" && String(l.what).includes(hook));
      assert.match(JSON.stringify(line.err), /hook bug/);
      await stillServing(server());
    });
  }

  it("a server stream whose source fails half-way: the messages so far, then INTERNAL, and an error log line", async () => {
    const { logger, lines } = capturingLogger();
    class FailingStore extends MemoryUserStore {
      override async *list(signal: AbortSignal): AsyncIterable<StoredUser> {
        for await (const user of super.list(signal)) {
          yield user;
          throw new Error("disk on fire");
        }
      }
    }
    const userStore = new FailingStore();
    await userStore.create({ username: "alexa" });
    await userStore.create({ username: "christie" });
    const running = await startApp([], { logger, userStore });
    try {
      const client = createClient(Users, createGrpcTransport({ baseUrl: running.url }));
      const got: string[] = [];
      await assert.rejects(
        (async () => {
          for await (const result of client.getUsers({})) got.push(result.user?.username ?? "");
        })(),
        (e: Error & { code?: number }) => e.code === 13,
      );
      assert.deepEqual(got, ["alexa"]);
      const line = lines.find((l) => l.msg === "rpc failed");
      assert.equal(line?.rpc, "Users/GetUsers");
      assert.match(JSON.stringify(line?.err), /disk on fire/);
    } finally {
      await running.stop(1000);
    }
  });
});

describe("errors outside any call", () => {
  for (const [hook, message] of [
    ["timeBomb", "uncaught exception: exiting"],
    ["floatingRejection", "unhandled promise rejection: exiting"],
  ] as const) {
    it(`${hook}: the process logs "${message}" with the error, and exits 1`, async () => {
      const server = await startServerProcess(plugins);
      const body = grpcFrame(toBinary(ObjectSchema, create(ObjectSchema, { hookType: HookType.Pre, hookName: hook, request: { url: "/" } })));
      await rawGrpcCall(server.baseUrl, "/coprocess.Dispatcher/Dispatch", body).catch(() => undefined);
      assert.equal(await server.exited, 1);
      const fatal = await server.waitForLog((l) => l.msg === message);
      assert.equal(fatal.level, 60);
      assert.match(JSON.stringify(fatal.err), /outside any call|nobody awaited/);
    });
  }
});
