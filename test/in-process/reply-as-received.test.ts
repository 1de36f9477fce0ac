import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { create, equals, fromBinary, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { definePlugin, reject } from "../../src/tyk/plugin.js";
import { PluginRegistry } from "../../src/tyk/registry.js";
import { startApp, type TestApp } from "../helpers/app.js";
import { articleObject } from "../helpers/fixtures.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { silentLogger } from "../helpers/loggers.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";

// A Dispatch reply that no hook changed is sent as the bytes the Object
// arrived in (the gRPC fast path); any change makes it encoded afresh. The
// request bytes here are valid but not what an encoder writes (fields in
// reverse order, an unknown field first), so an echo of them is told apart
// from a new encoding of the same message.

/** The Object's fields, each encoded on its own, in reverse order, after an unknown field 99. */
function unusualEncoding(object: Object$): Uint8Array {
  const parts: Uint8Array[] = [Uint8Array.of(0x98, 0x06, 0x2a)]; // field 99, varint 42
  const fields = ["response", "spec", "metadata", "session", "request", "hookName", "hookType"] as const;
  for (const name of fields) {
    const single = create(ObjectSchema);
    (single as Record<string, unknown>)[name] = object[name];
    parts.push(toBinary(ObjectSchema, single));
  }
  return Buffer.concat(parts);
}

async function startSide(fastPath: boolean): Promise<TestApp> {
  const logger = silentLogger();
  const registry = new PluginRegistry();
  const plugin = await definePlugin(() => ({
    name: "t",
    pre: {
      // Reads, changes nothing.
      look: (req, ctx) => {
        void req.header("authorization");
        void ctx.apiId;
      },
      addHeader: (req) => {
        req.setHeader("X-Added", "yes");
      },
      deny: () => reject(403, "no"),
      // An edit that fails checks still counts as an edit.
      badHeader: (req) => {
        try {
          req.setHeader("bad header", "x");
        } catch {
          // refused, as it should be
        }
      },
    },
  })).setup({ options: undefined, logger });
  registry.add("t", plugin, logger);
  return startApp(["--fast-path", fastPath ? "on" : "off", "--max-message-size", "4MiB"], { logger, registry });
}

async function dispatch(url: string, message: Uint8Array): Promise<Uint8Array> {
  const res = await rawGrpcCall(url, "/coprocess.Dispatcher/Dispatch", grpcFrame(message));
  assert.equal(res.trailers["grpc-status"], "0", String(res.trailers["grpc-message"]));
  assert.equal(res.body[0], 0, "uncompressed reply");
  assert.equal(res.body.readUInt32BE(1), res.body.length - 5, "one whole message");
  return res.body.subarray(5);
}

function objectWithHook(hookName: string): Object$ {
  const object = articleObject();
  object.hookType = HookType.Pre;
  object.hookName = hookName;
  return object;
}

describe("Dispatch replies no hook changed", () => {
  let fast: TestApp;
  let connectOnly: TestApp;
  before(async () => {
    fast = await startSide(true);
    connectOnly = await startSide(false);
  });
  after(async () => {
    await fast.stop(1000);
    await connectOnly.stop(1000);
  });

  it("a hook that only reads: the reply is the request's bytes, unknown field and order kept", async () => {
    const sent = unusualEncoding(objectWithHook("look"));
    assert.notDeepEqual(sent, toBinary(ObjectSchema, fromBinary(ObjectSchema, sent)), "the request is not in encoder order");
    assert.deepEqual(Buffer.from(await dispatch(fast.url, sent)), Buffer.from(sent));
  });

  it("no plugin for the hook: the same", async () => {
    const sent = unusualEncoding(objectWithHook("nobody-handles-this"));
    assert.deepEqual(Buffer.from(await dispatch(fast.url, sent)), Buffer.from(sent));
  });

  it("the connect path encodes the same message again: equal when decoded", async () => {
    const sent = unusualEncoding(objectWithHook("look"));
    const reply = await dispatch(connectOnly.url, sent);
    assert.ok(equals(ObjectSchema, fromBinary(ObjectSchema, reply), fromBinary(ObjectSchema, sent)));
    assert.deepEqual(Buffer.from(reply), Buffer.from(toBinary(ObjectSchema, fromBinary(ObjectSchema, sent))));
  });

  it("an edit through TykRequest: encoded afresh, with the edit", async () => {
    const object = objectWithHook("addHeader");
    const reply = await dispatch(fast.url, unusualEncoding(object));
    object.request!.setHeaders["X-Added"] = "yes";
    assert.deepEqual(Buffer.from(reply), Buffer.from(toBinary(ObjectSchema, fromBinary(ObjectSchema, unusualEncoding(object)))));
    assert.equal(fromBinary(ObjectSchema, reply).request?.setHeaders["X-Added"], "yes");
  });

  it("an edit that the checks refused still makes a fresh encoding", async () => {
    const sent = unusualEncoding(objectWithHook("badHeader"));
    const reply = await dispatch(fast.url, sent);
    assert.deepEqual(Buffer.from(reply), Buffer.from(toBinary(ObjectSchema, fromBinary(ObjectSchema, sent))));
  });

  it("an outcome (reject): the return overrides are in the reply", async () => {
    const reply = fromBinary(ObjectSchema, await dispatch(fast.url, unusualEncoding(objectWithHook("deny"))));
    assert.equal(reply.request?.returnOverrides?.responseCode, 403);
    assert.equal(reply.request?.returnOverrides?.responseError, "no");
  });

  it("an Object without return overrides: the reply gets them (code -1), so it is not the request", async () => {
    const object = objectWithHook("look");
    object.request!.returnOverrides = undefined;
    const reply = fromBinary(ObjectSchema, await dispatch(fast.url, toBinary(ObjectSchema, object)));
    assert.equal(reply.request?.returnOverrides?.responseCode, -1);
  });
});
