import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, toBinary, toJson } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { Dispatcher, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";
import { maskObjectJson } from "../../src/tyk/mask.js";
import { deferredObjectMark, markDeferredObject } from "../../src/tyk/object-log.js";
import { expandDeferredObjects as expandInto, LineExpander } from "../../src/tyk/object-log-thread.js";
import { articleObject, articleObjectJson } from "../helpers/fixtures.js";
import { startServerProcess } from "../helpers/server-process.js";

// The log thread's side of the deferred Object log (object-log.ts): lines in,
// lines out, as pino's thread hands them over. The end-to-end behaviour
// (what a real server writes to stdout) is in logging.test.ts and below.

// The pieces written for `text`, joined.
function expandDeferredObjects(text: string): string {
  const pieces: string[] = [];
  expandInto(text, (piece) => pieces.push(piece) > 0);
  return pieces.join("");
}
const base64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");
const secretObject = () => {
  const object = articleObject();
  object.session = create(SessionStateSchema, { hmacSecret: "SECRET-hmac", metadata: { token: "SECRET-token" } });
  return object;
};
const line = (fields: string) => `{"level":30,"time":"2026-11-21T00:00:00.000Z",${fields},"msg":"dispatch object"}\n`;

describe("log transport", () => {
  it("replaces a deferred Object by its masked proto3 JSON, in place", () => {
    const object = secretObject();
    const out = expandDeferredObjects(line(`"traceId":"t1",${markDeferredObject(base64(toBinary(ObjectSchema, object)), false)}`));
    assert.equal(out, line(`"traceId":"t1","object":${JSON.stringify(maskObjectJson(toJson(ObjectSchema, object)))}`));
    assert.doesNotMatch(out, /SECRET/);
    assert.equal((JSON.parse(out) as { object: { request: { headers: Record<string, string> } } }).object.request.headers.Authorization, "[redacted]");
  });

  it("the unmasked field (--log-secrets) shows the Object as it is", () => {
    const object = secretObject();
    const out = expandDeferredObjects(line(`${markDeferredObject(base64(toBinary(ObjectSchema, object)), true)}`));
    assert.deepEqual((JSON.parse(out) as { object: unknown }).object, toJson(ObjectSchema, object));
    assert.match(out, /SECRET-hmac/);
  });

  it("leaves other lines as they are, also ones whose text looks like a field the server logs (the old marker)", () => {
    const other = `{"level":40,"msg":"a plugin wrote \\"coprocess.Object:base64\\":\\"AAAA\\""}\n{"level":30,"event":{"coprocess.Object:base64:unmasked":"CgA="},"msg":"received event"}\n`;
    assert.equal(expandDeferredObjects(other), other);
  });

  it("expands every deferred Object of a chunk and keeps the lines between them", () => {
    const a = articleObject();
    const b = secretObject();
    const chunk = [
      line(`${markDeferredObject(base64(toBinary(ObjectSchema, a)), false)}`),
      `{"level":30,"msg":"dispatch"}\n`,
      line(`${markDeferredObject(base64(toBinary(ObjectSchema, b)), false)}`),
    ].join("");
    const lines = expandDeferredObjects(chunk)
      .trimEnd()
      .split("\n")
      .map((l) => JSON.parse(l) as { object?: unknown; msg: string });
    assert.deepEqual(
      lines.map((l) => l.msg),
      ["dispatch object", "dispatch", "dispatch object"],
    );
    assert.deepEqual(lines[0]!.object, maskObjectJson(toJson(ObjectSchema, a)));
    assert.deepEqual(lines[2]!.object, maskObjectJson(toJson(ObjectSchema, b)));
  });

  it("bytes that are not an Object never reach the log: a note stands in for them", () => {
    const garbage = base64(Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x53, 0x45, 0x43, 0x52, 0x45, 0x54]));
    const out = expandDeferredObjects(line(`${markDeferredObject(garbage, false)}`));
    const { object } = JSON.parse(out) as { object: string };
    assert.match(object, /^\[Object not shown: /);
    assert.ok(!out.includes(garbage));
    // A line cut short in the middle of the bytes (only ever at the very end) loses them too.
    const cut = `{"level":30,${deferredObjectMark}u${base64(toBinary(ObjectSchema, secretObject())).slice(0, 40)}`;
    assert.ok(!expandDeferredObjects(cut).includes(cut.slice(-30)));
  });

  it("a line split across chunks is written whole, once its end has arrived", () => {
    const text = `${line(`${markDeferredObject(base64(toBinary(ObjectSchema, articleObject())), false)}`)}{"level":30,"msg":"next"}\n`;
    const whole = expandDeferredObjects(text);
    for (const cut of [1, 60, 100, text.length - 30, text.length - 1]) {
      const pieces: string[] = [];
      const lines = new LineExpander((piece) => pieces.push(piece) > 0);
      lines.push(text.slice(0, cut));
      lines.push(text.slice(cut));
      lines.end();
      assert.equal(pieces.join(""), whole, `cut at ${cut}`);
    }
    const pieces: string[] = [];
    const lines = new LineExpander((piece) => pieces.push(piece) > 0);
    lines.push(`{"level":30,"msg":"no newline yet"}`);
    assert.deepEqual(pieces, []);
    lines.end();
    assert.deepEqual(pieces, [`{"level":30,"msg":"no newline yet"}`]);
    // A destination that wants a drain is told to pino's thread, which then waits for it.
    assert.equal(new LineExpander(() => false).push(text), false);
    assert.equal(new LineExpander(() => true).push(text), true);
  });

  it("an Object that came over Connect JSON (no wire bytes kept) is logged from its message", async () => {
    const server = await startServerProcess(["--log-level", "info", "--log-objects"]);
    try {
      const client = createClient(Dispatcher, createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2", useBinaryFormat: false }));
      await client.dispatch(articleObject());
      const dump = await server.waitForLog((l) => l.msg === "dispatch object");
      const expected = structuredClone(articleObjectJson) as { request: { headers: Record<string, string> } };
      expected.request.headers.Authorization = "[redacted]";
      assert.deepEqual(dump.object, expected);
      assert.ok(!server.stdout().includes(deferredObjectMark));
    } finally {
      await server.stop();
    }
  });
});
