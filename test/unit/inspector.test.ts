import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { CallRecorder } from "../../src/services/inspector/call-recorder.js";
import { describeChanges, jsonChanges } from "../../src/services/inspector/object-changes.js";
import { replayCommands } from "../../src/services/inspector/replay-commands.js";
import { capturingLogger, silentLogger } from "../helpers/loggers.js";

describe("what a plugin changed", () => {
  it("finds each leaf that differs, and a key on one side only at each leaf beneath it", () => {
    const before = { request: { headers: { A: "1" }, url: "/a", deleteHeaders: ["x"] }, session: undefined };
    const after = { request: { headers: { A: "1" }, setHeaders: { B: "2", C: "3" }, url: "/b", deleteHeaders: ["x", "y"] }, session: { rate: 5 } };
    assert.deepEqual(
      jsonChanges(before as never, after as never).map((c) => `${c.kind} ${c.path.join(".")}`),
      ["changed request.url", "changed request.deleteHeaders", "added request.setHeaders.B", "added request.setHeaders.C", "added session.rate"],
    );
    assert.deepEqual(
      jsonChanges({ a: { b: 1 } }, { a: {} }).map((c) => `${c.kind} ${c.path.join(".")}`),
      ["removed a.b"],
    );
    assert.deepEqual(jsonChanges({ a: [1, { b: 2 }] }, { a: [1, { b: 2 }] }), []);
  });

  it("says it in words, with the values shown (masked) rather than the ones compared", () => {
    const received = { request: { url: "/a", method: "GET", deleteHeaders: ["x"], returnOverrides: { responseCode: -1 } } };
    const reply = {
      request: {
        url: "/b",
        method: "POST",
        setHeaders: { Authorization: "[redacted]" },
        deleteHeaders: ["x", "Cookie"],
        returnOverrides: { responseCode: 403, responseError: "no" },
      },
      session: { rate: 5, metadata: { owner: "ops" } },
    };
    const changes = jsonChanges(received, reply);
    assert.deepEqual(describeChanges(changes, received, reply), [
      'URL: "/a" → "/b"',
      'method: "GET" → "POST"',
      "deleted request headers: Cookie",
      "answers early with status 403: the upstream is not called",
      'early answer error message set to "no"',
      'request header Authorization set to "[redacted]"',
      'session metadata owner set to "ops"',
      "session created: rate",
    ]);
  });
});

describe("replay commands", () => {
  const doc = { hookType: "Pre", hookName: "h", request: { headers: { "X-A": "it's" } } };

  it("send the Object in a quoted here-document to the first plaintext TCP address, a wildcard reached on loopback", () => {
    const r = replayCommands(doc, { plaintext: [{ kind: "tcp", host: "::", port: 50051 }], tls: [] }, false);
    assert.ok(!("unavailable" in r));
    assert.equal(r.grpcurl, `grpcurl -plaintext -d @ 127.0.0.1:50051 coprocess.Dispatcher/Dispatch <<'JSON'\n${JSON.stringify(doc)}\nJSON`);
    assert.equal(r.client, `pnpm client dispatch --server http://127.0.0.1:50051 --file - <<'JSON'\n${JSON.stringify(doc)}\nJSON`);
    assert.equal(r.warning, null);
  });

  it("use a unix socket or a TLS address when there is no plaintext TCP one, warn of masked values, and refuse a cut Object", () => {
    const unix = replayCommands({ a: "[redacted]" }, { plaintext: [{ kind: "unix", path: "/run/p.sock" }], tls: [] }, false);
    assert.ok(!("unavailable" in unix));
    assert.match(unix.grpcurl, /^grpcurl -plaintext -unix -d @ \/run\/p.sock /);
    assert.match(unix.client, /--server unix:\/\/\/run\/p.sock /);
    assert.match(unix.warning!, /credentials are masked/);
    const tls = replayCommands(doc, { plaintext: [], tls: [{ kind: "tcp", host: "::1", port: 8443 }] }, false);
    assert.ok(!("unavailable" in tls));
    assert.match(tls.grpcurl, /^grpcurl -insecure -d @ \[::1\]:8443 /);
    assert.deepEqual(replayCommands(doc, { plaintext: [{ kind: "tcp", host: "::", port: 1 }], tls: [] }, true), {
      unavailable: "a value of this Object was cut for display, so it cannot be sent again as it came",
    });
  });
});

describe("the call recorder", () => {
  const object = (apiId: string, body = ""): Object$ =>
    create(ObjectSchema, {
      hookType: HookType.Pre,
      hookName: "h",
      request: { method: "GET", url: "/", body, returnOverrides: { responseCode: -1 } },
      spec: { APIID: apiId },
    });
  const run = (recorder: CallRecorder, o: Object$) =>
    recorder.observe(o, (report) => {
      report("p", "continue");
      o.request!.setHeaders.X = "1";
      return o;
    });

  it("watches only while a viewer is subscribed", () => {
    const recorder = new CallRecorder({ capacity: 10, logSecrets: false, logger: silentLogger() });
    assert.equal(recorder.watching, false);
    const leave = recorder.subscribe({ send: () => undefined });
    assert.equal(recorder.watching, true);
    leave();
    assert.equal(recorder.watching, false);
  });

  it("keeps the last calls within its byte budget, and returns what the call returned", () => {
    const recorder = new CallRecorder({ capacity: 100, logSecrets: false, logger: silentLogger(), maxBytes: 50_000 });
    const o = object("first");
    assert.equal(run(recorder, o), o);
    for (let i = 0; i < 10; i++) run(recorder, object(`api-${i}`, "x".repeat(10_000)));
    const kept = recorder.calls().map((c) => c.apiId);
    assert.ok(kept.length >= 1 && kept.length <= 5, `at most 50 kB of calls of about 20 kB each: ${kept.join(", ")}`);
    assert.equal(kept.at(-1), "api-9");
    const detail = JSON.parse(recorder.detail(recorder.calls().at(-1)!.id)!) as { call: { notes: string[] } };
    assert.deepEqual(detail.call.notes, ['request header X set to "1"']);
  });

  it("never fails a call it cannot record, and says so in the log once", () => {
    const { logger, lines } = capturingLogger();
    const recorder = new CallRecorder({ capacity: 10, logSecrets: false, logger });
    const unencodable = object("a");
    (unencodable as unknown as { hookType: unknown }).hookType = "x";
    assert.equal(run(recorder, unencodable), unencodable);
    // A reply a hook made unencodable (the transport fails that call; the recorder must not).
    const o = object("b");
    const reply = recorder.observe(o, (report) => {
      report("p", "continue");
      (o as unknown as { hookType: unknown }).hookType = "y";
      return o;
    });
    assert.equal(reply, o);
    assert.deepEqual(recorder.calls(), [], "neither call is recorded; both went on");
    assert.deepEqual(
      lines.map((l) => l.msg),
      ["the inspector could not record a call: the call went on (logged once)"],
    );
  });
});
