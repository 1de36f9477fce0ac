import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { ReturnOverridesSchema } from "../../gen/coprocess_return_overrides_pb.js";
import { EchoRequestSchema } from "../../gen/echo_pb.js";

// patches/@bufbuild__protobuf@2.17.0.patch makes toBinary reuse one writer
// between calls. These are the ways that could go wrong: results sharing
// the reused buffer, state left behind by a failed encode, and a large
// message's buffer leaking into the next one.

const object = (hookName: string, headers: Record<string, string> = {}) =>
  create(ObjectSchema, { hookType: HookType.Pre, hookName, request: { url: "/get", headers }, spec: { APIID: "api" } });

describe("toBinary with the reused writer (protobuf-es patch)", () => {
  it("each result is its own copy: a later encode does not change an earlier result", () => {
    const first = toBinary(ObjectSchema, object("first", { a: "1" }));
    const kept = Uint8Array.from(first);
    const second = toBinary(ObjectSchema, object("second-and-longer", { b: "2", c: "3" }));
    assert.deepEqual(first, kept);
    assert.notEqual(first.buffer, second.buffer);
    assert.equal(fromBinary(ObjectSchema, first).hookName, "first");
    assert.equal(fromBinary(ObjectSchema, second).hookName, "second-and-longer");
  });

  it("an encode that throws half-way leaves nothing behind for the next one", () => {
    // Not an int32, two messages deep: the hook fields and the start of
    // request are written before the encode throws.
    const bad = object("bad", { x: "y" });
    bad.request!.returnOverrides = create(ReturnOverridesSchema, { responseCode: 1.5 });
    assert.throws(() => toBinary(ObjectSchema, bad), /invalid int32/);
    const good = object("good", { x: "y" });
    const bytes = toBinary(ObjectSchema, good);
    assert.deepEqual(fromBinary(ObjectSchema, bytes), good);
  });

  it("a message larger than the kept buffer, then a small one, both round-trip", () => {
    const big = create(EchoRequestSchema, { message: "x".repeat(200_000) });
    const small = create(EchoRequestSchema, { message: "hi" });
    const bigBytes = toBinary(EchoRequestSchema, big);
    const smallBytes = toBinary(EchoRequestSchema, small);
    assert.equal(fromBinary(EchoRequestSchema, bigBytes).message.length, 200_000);
    assert.deepEqual(smallBytes, Uint8Array.from([10, 2, 104, 105]));
  });
});
