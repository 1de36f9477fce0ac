import { strict as assert } from "node:assert";
import * as http2 from "node:http2";
import { describe, it } from "node:test";
import { brotliCompressSync, gzipSync, constants as zlib } from "node:zlib";
import { create, toBinary } from "@bufbuild/protobuf";
import { EventSchema } from "../../gen/coprocess_object_pb.js";
import { EchoRequestSchema } from "../../gen/echo_pb.js";
import { CreateUserRequestSchema } from "../../gen/users_types_pb.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { grpcStatusOf, rawGrpcCallOn } from "../helpers/raw-http2.js";
import { useServerProcess } from "../helpers/server-process.js";

// Requests that are cheap to send and were expensive to refuse: each must
// cost about what a harmless request of the same size costs. Durations are
// compared with a control in the same test, never with absolute times.

const mib = 2 ** 20;

/** A compressed gRPC frame (flag 1) of `message`. */
function compressedFrame(bytes: Uint8Array, encoding: "br" | "gzip"): Buffer {
  const data = encoding === "br" ? brotliCompressSync(bytes, { params: { [zlib.BROTLI_PARAM_QUALITY]: 5 } }) : gzipSync(bytes);
  return grpcFrame(data, 1);
}

const createUser = (fields: { username: string; email?: string; password?: string }) =>
  toBinary(CreateUserRequestSchema, create(CreateUserRequestSchema, fields));

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - started };
}

describe("expensive refusals", () => {
  const server = useServerProcess();
  const connect = () => {
    const session = http2.connect(server().baseUrl);
    session.on("error", () => undefined);
    return session;
  };

  it("a 60 MiB username (a 107-byte brotli request) is refused as fast as a 60 MiB email", async (t) => {
    const session = connect();
    try {
      const huge = "a".repeat(60 * mib);
      const call = (fields: Parameters<typeof createUser>[0]) =>
        timed(() => rawGrpcCallOn(session, "/Users/CreateUser", compressedFrame(createUser(fields), "br"), { "grpc-encoding": "br" }));
      await call({ username: "x", email: huge }); // warm-up
      // The control: the same bytes to decompress and parse, refused by a length check.
      const control = await call({ username: "x", email: huge });
      const test = await call({ username: huge });
      assert.equal(grpcStatusOf(control.value), "3");
      assert.equal(grpcStatusOf(test.value), "3");
      assert.match(decodeURIComponent(String(test.value.trailers["grpc-message"])), /at most 128 characters/);
      t.diagnostic(`username ${test.ms.toFixed(0)} ms, email ${control.ms.toFixed(0)} ms`);
      // Before: 6-7 s against about 0.2 s (every code point was counted first).
      assert.ok(test.ms < 3 * control.ms + 100, `username ${test.ms.toFixed(0)} ms, email ${control.ms.toFixed(0)} ms`);
    } finally {
      session.close();
    }
  });

  it("CreateUser floods (a taken name; fresh names) do not starve other clients' gzip calls of libuv's pool", async (t) => {
    const session = connect();
    const other = connect();
    try {
      const setup = await rawGrpcCallOn(session, "/Users/CreateUser", grpcFrame(createUser({ username: "taken" })));
      assert.equal(grpcStatusOf(setup), "0");
      const gzipEcho = compressedFrame(toBinary(EchoRequestSchema, create(EchoRequestSchema, { message: "g".repeat(64 * 1024) })), "gzip");
      // Five gzip calls one after the other, on another connection, while `flood` runs.
      const gzipCallsDuring = async (flood: () => Promise<unknown>) => {
        const running = flood();
        const { ms } = await timed(async () => {
          for (let i = 0; i < 5; i++) {
            assert.equal(grpcStatusOf(await rawGrpcCallOn(other, "/echo.Echo/Reply", gzipEcho, { "grpc-encoding": "gzip" })), "0");
          }
        });
        const statuses = (await running) as string[];
        return { ms, statuses };
      };
      const flood = (n: number, fields: (i: number) => Parameters<typeof createUser>[0]) => () =>
        Promise.all(Array.from({ length: n }, (_, i) => rawGrpcCallOn(session, "/Users/CreateUser", grpcFrame(createUser(fields(i)))).then(grpcStatusOf)));
      // The control: as many calls refused by validation, which hash nothing.
      await gzipCallsDuring(flood(900, () => ({ username: " bad" })));
      const control = await gzipCallsDuring(flood(900, () => ({ username: " bad", password: "s3cret" })));
      const taken = await gzipCallsDuring(flood(900, () => ({ username: "taken", password: "s3cret" })));
      const fresh = await gzipCallsDuring(flood(300, (i) => ({ username: `fresh-${i}`, password: "s3cret" })));
      assert.deepEqual(new Set(taken.statuses), new Set(["6"]), "ALREADY_EXISTS for every taken-name call");
      const freshCodes = new Set(fresh.statuses);
      assert.ok(freshCodes.has("0"), "some fresh names are created");
      assert.ok(
        [...freshCodes].every((c) => c === "0" || c === "8"),
        `fresh names: OK or RESOURCE_EXHAUSTED, got ${[...freshCodes]}`,
      );
      const report = `gzip calls: ${control.ms.toFixed(0)} ms during the control, ${taken.ms.toFixed(0)} during taken names, ${fresh.ms.toFixed(0)} during fresh names`;
      t.diagnostic(report);
      // Before: every taken-name call hashed, and the pool's four threads
      // were busy for seconds (29-32 s per gzip call with 3,000 calls).
      assert.ok(taken.ms < 4 * control.ms + 200, report);
      assert.ok(fresh.ms < 4 * control.ms + 200, report);
    } finally {
      session.close();
      other.close();
    }
  });

  it("a DispatchEvent payload nested 100k deep is INVALID_ARGUMENT (the caller's error), not a stack overflow logged as INTERNAL", async () => {
    const session = connect();
    try {
      const deep = `${'{"a":'.repeat(100_000)}1${"}".repeat(100_000)}`;
      const res = await rawGrpcCallOn(session, "/coprocess.Dispatcher/DispatchEvent", grpcFrame(toBinary(EventSchema, create(EventSchema, { payload: deep }))));
      assert.equal(grpcStatusOf(res), "3", decodeURIComponent(String(res.trailers["grpc-message"])));
      assert.match(decodeURIComponent(String(res.trailers["grpc-message"])), /nested deeper than/);
      await server().waitForLog((l) => l.msg === "rpc failed" && l.code === "InvalidArgument" && /nested/.test(String(l.message)));
      assert.equal(server().lines.filter((l) => l.level === 50 && l.rpc === "coprocess.Dispatcher/DispatchEvent").length, 0, "no error-level line");
      // A Tyk event, nested as the gateway nests it, is still served.
      const event = JSON.stringify({
        message: { Type: "AuthFailure", Meta: { Key: "k", Origin: "127.0.0.1" }, TimeStamp: "now" },
        handler_name: "logEvent",
        spec: { APIID: "a" },
      });
      const ok = await rawGrpcCallOn(session, "/coprocess.Dispatcher/DispatchEvent", grpcFrame(toBinary(EventSchema, create(EventSchema, { payload: event }))));
      assert.equal(grpcStatusOf(ok), "0");
    } finally {
      session.close();
    }
  });
});
