import { strict as assert } from "node:assert";
import { spawn } from "node:child_process";
import { describe, it } from "node:test";
import { toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { Dispatcher, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { Users } from "../../gen/users_pb.js";
import { requestObject } from "../../src/testing/gateway-model.js";
import { articleObject, articleObjectJson } from "../helpers/fixtures.js";
import { grpcFrame } from "../helpers/grpc-frame.js";
import { repoPath } from "../helpers/paths.js";
import { rawGrpcCall } from "../helpers/raw-http2.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// What the server writes to stdout, captured from the real process.

/** Starts a server with `args`, sends it the Tyk article's Object, runs `check`, stops it. */
async function afterDispatch(args: string[], check: (server: ServerProcess) => Promise<void>): Promise<void> {
  const server = await startServerProcess(args);
  try {
    await createClient(Dispatcher, createGrpcTransport({ baseUrl: server.baseUrl })).dispatch(articleObject());
    await check(server);
  } finally {
    await server.stop();
  }
}

describe("logging", () => {
  it("at debug, Dispatch logs a hook line and the whole Object as proto3 JSON", () =>
    afterDispatch(["--log-level", "debug"], async (server) => {
      const hook = await server.waitForLog((l) => l.msg === "dispatch");
      assert.deepEqual([hook.hookType, hook.hookName, hook.apiId], ["Pre", "MyPreCustomPluginForBasicAuth", "04e911d3012646d97fcdd6c846fafc4b"]);
      const dump = await server.waitForLog((l) => l.msg === "dispatch object");
      const expected = structuredClone(articleObjectJson) as { request: { headers: Record<string, string> } };
      expected.request.headers.Authorization = "[redacted]";
      assert.deepEqual(dump.object, expected);
      assert.doesNotMatch(server.stdout(), /ZGV2QHR5ay5pbzpwYXN0cnk=/);
    }));

  it("--log-secrets logs the Object exactly as received", () =>
    afterDispatch(["--log-level", "debug", "--log-secrets"], async (server) => {
      const dump = await server.waitForLog((l) => l.msg === "dispatch object");
      assert.deepEqual(dump.object, articleObjectJson);
    }));

  it("at info, the Object dump is off but the hook line stays", () =>
    afterDispatch(["--log-level", "info"], async (server) => {
      await server.waitForLog((l) => l.msg === "dispatch");
      assert.equal(server.lines.filter((l) => l.msg === "dispatch object").length, 0);
    }));

  it("--log-objects logs the Object at info level, masked", () =>
    afterDispatch(["--log-level", "info", "--log-objects"], async (server) => {
      const dump = await server.waitForLog((l) => l.msg === "dispatch object");
      assert.equal(dump.level, 30);
      assert.equal((dump.object as { request: { headers: Record<string, string> } }).request.headers.Authorization, "[redacted]");
    }));

  it("--log-objects: an Object over 256 KiB is logged without its bodies (a 20 MB upload's line stalled the log thread, and the exit failed)", async () => {
    const server = await startServerProcess(["--log-level", "info", "--log-objects"]);
    try {
      const object = requestObject(HookType.Pre, "big", {
        method: "POST",
        url: "/upload",
        headers: { Authorization: "SECRET-big" },
        body: "x".repeat(20 * 2 ** 20),
      });
      const res = await rawGrpcCall(server.baseUrl, "/coprocess.Dispatcher/Dispatch", grpcFrame(toBinary(ObjectSchema, object)));
      assert.equal(res.trailers["grpc-status"], "0");
      const dump = await server.waitForLog((l) => l.msg === "dispatch object");
      const logged = dump.object as { request: { body: string; rawBody: string; url: string; headers: Record<string, string> } };
      assert.equal(logged.request.body, `[${20 * 2 ** 20} bytes not logged]`);
      assert.equal(logged.request.rawBody, `[${20 * 2 ** 20} bytes not logged]`);
      assert.equal(logged.request.url, "/upload");
      assert.equal(logged.request.headers.Authorization, "[redacted]");
      assert.ok(Number(dump.objectBytes) > 40 * 2 ** 20);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });

  it("CreateUser logs metadata with credentials masked and never logs the password", async () => {
    const server = await startServerProcess(["--log-level", "trace"]);
    try {
      const users = createClient(Users, createGrpcTransport({ baseUrl: server.baseUrl }));
      const headers = { ip: "127.0.0.1", authorization: "Bearer tok-SECRET-1", "x-api-key": "key-SECRET-2", cookie: "sid=SECRET-3" };
      await users.createUser({ username: "tom", password: "pw-SECRET-4" }, { headers });
      const line = await server.waitForLog((l) => l.msg === "create user");
      assert.deepEqual(line.metadata, {
        ip: "127.0.0.1",
        authorization: "[redacted]",
        "x-api-key": "[redacted]",
        cookie: "[redacted]",
        "user-agent": (line.metadata as Record<string, string>)["user-agent"],
      });
      await server.waitForLog((l) => l.msg === "user created");
      assert.doesNotMatch(server.stdout(), /SECRET/);
    } finally {
      await server.stop();
    }
  });

  it("--log-format pretty writes human-readable lines", async () => {
    const child = spawn(process.execPath, [repoPath("dist", "src", "main.js"), "--listen", "127.0.0.1:0", "--log-format", "pretty"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      let out = "";
      await new Promise<void>((resolve, reject) => {
        child.stdout.on("data", (d: Buffer) => {
          out += d.toString();
          if (out.includes("server listening")) resolve();
        });
        child.once("exit", () => reject(new Error(out)));
      });
      const line = out.split("\n").find((l) => l.includes("server listening"))!;
      assert.throws(() => JSON.parse(line));
      assert.match(line, /INFO/);
    } finally {
      child.kill("SIGKILL");
    }
  });
});
