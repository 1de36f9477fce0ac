import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { EchoRequestSchema } from "../../gen/echo_pb.js";
import { GetUsersRequestSchema } from "../../gen/users_types_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { startServerProcess, useServerProcess } from "../helpers/server-process.js";

// Hand-made HTTP/2 requests, for headers that client libraries will not send
// as we need them (an already-expired grpc-timeout).

describe("raw HTTP/2 gRPC requests", () => {
  const server = useServerProcess();

  it("grpc-timeout: 1n (deadline already passed, as the seed's 0.00001 s client) gets DEADLINE_EXCEEDED with no message", async () => {
    const body = grpcFrame(toBinary(GetUsersRequestSchema, create(GetUsersRequestSchema, { user: [{ username: "alexa" }] })));
    const res = await rawGrpcCall(server().baseUrl, "/Users/GetUsers", body, { "grpc-timeout": "1n" });
    const status = res.trailers["grpc-status"] ?? res.headers["grpc-status"];
    const message = res.trailers["grpc-message"] ?? res.headers["grpc-message"] ?? "";
    assert.equal(status, "4");
    assert.equal(message, "");
    assert.equal(res.body.length, 0, "no message streamed");
  });

  it("a timeout that has not passed lets the call run", async () => {
    const body = grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "hi" })));
    const res = await rawGrpcCall(server().baseUrl, "/echo.Echo/Reply", body, { "grpc-timeout": "5S" });
    assert.equal(res.trailers["grpc-status"], "0");
    assert.ok(res.body.length > 5);
  });

  it("an unknown method is UNIMPLEMENTED and the server keeps serving", async () => {
    const res = await rawGrpcCall(server().baseUrl, "/echo.Echo/Shout", grpcFrame(new Uint8Array()));
    assert.equal(res.headers["grpc-status"], "12", "trailers-only UNIMPLEMENTED");
    assert.equal(decodeURIComponent(String(res.headers["grpc-message"])), "unknown method /echo.Echo/Shout");
    const ok = await rawGrpcCall(server().baseUrl, "/echo.Echo/Reply", grpcFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "x" }))));
    assert.equal(ok.trailers["grpc-status"], "0");
  });

  it("a request larger than --max-message-size gets RESOURCE_EXHAUSTED naming the flag, on the fast path and through connect", async () => {
    const small = await startServerProcess(["--max-message-size", "1KiB"]);
    try {
      const big = toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "x".repeat(2048) }));
      // Echo is on the fast path; GetUsers (server streaming) goes through connect.
      for (const path of ["/echo.Echo/Reply", "/Users/GetUsers"]) {
        const res = await rawGrpcCall(small.baseUrl, path, grpcFrame(big));
        assert.equal(res.trailers["grpc-status"] ?? res.headers["grpc-status"], "8", path);
        const message = decodeURIComponent(String(res.trailers["grpc-message"] ?? res.headers["grpc-message"]));
        assert.equal(message, `message size ${big.length} is larger than the limit of 1024 bytes (--max-message-size)`, path);
      }
    } finally {
      assert.equal(await small.stop(), 0);
    }
  });
});
