import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { Int32ValueSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createServiceImplSpec } from "@connectrpc/connect";
import { Users } from "../../gen/users_pb.js";
import { GetUsersRequestSchema } from "../../gen/users_types_pb.js";
import { startApp, type TestApp } from "../helpers/app.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { capturingLogger } from "../helpers/loggers.js";
import { type RawResponse, rawGrpcCall } from "../helpers/raw-http2.js";

// Some answers only fail when they are written: a status whose message or
// details do not encode, fields HTTP/2 forbids. Written by connect or by
// node after the handler has returned, such a failure used to hang the call
// (connect's path) or take the process down (node's trailers event). Here,
// on connect's path (gRPC with JSON, the Connect protocol, a server stream;
// the fast path has the same cases in fast-path-differential), each must
// still end its call with a status.

describe("answers that do not encode as they are", () => {
  const { logger, lines } = capturingLogger();
  let server: TestApp;
  let url: string;
  before(async () => {
    // Users whose handlers fail the ways a handler can: a message cut
    // inside a surrogate pair, a detail that does not fit its schema,
    // metadata and trailers HTTP/2 forbids; GetUsers after sending a user.
    const failure = () =>
      new ConnectError("cut in an emoji: \uD83D", Code.FailedPrecondition, { connection: "close", "x-kept": "k" }, [
        { desc: Int32ValueSchema, value: { value: "x" as unknown as number } },
      ]);
    const failingUsers = createServiceImplSpec<typeof Users>(Users, {
      createUser() {
        throw failure();
      },
      async *getUsers(_req, ctx) {
        yield { user: { username: "ann", userId: 1 } };
        ctx.responseTrailer.set("upgrade", "h2c");
        throw failure();
      },
    });
    server = await startApp(["--max-message-size", "4096"], { logger, replaceServices: [failingUsers] });
    url = server.url;
  });
  after(() => server.stop(1000));

  it("a unary call over gRPC with the JSON codec: its status, repaired, and the metadata that is allowed", async () => {
    const res = await answered(
      rawGrpcCall(url, "/Users/CreateUser", grpcFrame(Buffer.from('{"username":"ann"}')), { "content-type": "application/grpc+json" }),
    );
    assert.equal(res.trailers["grpc-status"], String(Code.FailedPrecondition));
    assert.equal(decodeURIComponent(String(res.trailers["grpc-message"])), "cut in an emoji: \uFFFD");
    assert.equal(res.trailers["grpc-status-details-bin"], undefined, "its only detail did not encode");
    assert.equal(res.trailers["x-kept"], "k");
    assert.equal(res.trailers.connection, undefined);
    assert.ok(lines.some((l) => l.rpc === "Users/CreateUser" && l.droppedDetails === 1 && l.messageRepaired === true));
  });

  it("the same call over the Connect protocol: its error as JSON", async () => {
    const res = await answered(rawGrpcCall(url, "/Users/CreateUser", Buffer.from('{"username":"ann"}'), { "content-type": "application/json" }));
    assert.equal(res.headers[":status"], 400);
    const error = JSON.parse(res.body.toString()) as { code: string; message: string; details?: unknown[] };
    assert.deepEqual(error, { code: "failed_precondition", message: "cut in an emoji: \uFFFD" });
  });

  it("a server stream that fails that way ends with its status after the messages it sent", async () => {
    const body = grpcFrame(toBinary(GetUsersRequestSchema, create(GetUsersRequestSchema)));
    const res = await answered(rawGrpcCall(url, "/Users/GetUsers", body));
    assert.equal(res.headers[":status"], 200);
    assert.ok(res.body.length > 5 && res.body.readUInt32BE(1) === res.body.length - 5, "the one user, whole");
    assert.equal(res.trailers["grpc-status"], String(Code.FailedPrecondition));
    assert.equal(decodeURIComponent(String(res.trailers["grpc-message"])), "cut in an emoji: \uFFFD");
    assert.equal(res.trailers["grpc-status-details-bin"], undefined, "its only detail did not encode");
    assert.equal(res.trailers.upgrade, undefined);
    assert.equal(res.trailers.connection, undefined);
    assert.equal(res.trailers["x-kept"], "k");
    assert.ok(
      lines.some(
        (l) =>
          String(l.msg).startsWith("response fields HTTP/2 forbids") && JSON.stringify(l.dropped) === '["connection","upgrade"]' && l.rpc === "Users/GetUsers",
      ),
    );
    assert.ok(lines.some((l) => l.rpc === "Users/GetUsers" && l.droppedDetails === 1));
  });
});

/** The call's answer, or a failure if there is none within 5 s (the bug was a call never answered). */
function answered(call: Promise<RawResponse>): Promise<RawResponse> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error("no answer within 5 s")), 5000)));
  return Promise.race([call, timeout]).finally(() => clearTimeout(timer));
}
