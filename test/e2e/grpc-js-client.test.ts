import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { collectStream, grpc, grpcJsClients, unary } from "../helpers/grpc-js.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// @grpc/grpc-js with @grpc/proto-loader reading proto/ at run time: a client
// that shares no code with the server, as the tutorials' Python clients.

describe("grpc-js client against the server process", () => {
  let server: ServerProcess;
  let clients: ReturnType<typeof grpcJsClients>;
  before(async () => {
    server = await startServerProcess();
    clients = grpcJsClients(server.address);
  });
  after(async () => {
    clients.close();
    assert.equal(await server.stop(), 0);
  });

  it("Echo.Reply", async () => {
    const res = await unary<{ message: string }>(clients.echo, "Reply", { message: "Hello World!" });
    assert.equal(res.message, "You said: Hello World!");
  });

  it("Dispatch echoes the Object field by field, int32 -1 and enum included", async () => {
    const object = {
      hook_type: "Pre",
      hook_name: "MyPreCustomPluginForBasicAuth",
      request: {
        headers: { Host: "tyk-gateway.localhost:8080", Authorization: "Basic ZGV2QHR5ay5pbzpwYXN0cnk=" },
        url: "/basic-authentication-valid/get",
        return_overrides: { response_code: -1 },
        method: "GET",
        request_uri: "/basic-authentication-valid/get",
        scheme: "https",
        raw_body: Buffer.from([0, 1, 2, 255]),
      },
      session: { rate: 100, per: 1, quota_max: "9007199254740993", metadata: { token: "abc" } },
      spec: { APIID: "04e911d3012646d97fcdd6c846fafc4b", OrgID: "5e9d9544a1dcd60001d0ed20" },
    };
    const got = await unary<typeof object>(clients.dispatcher, "Dispatch", object);
    assert.deepEqual(got, object);
  });

  it("DispatchEvent: empty reply for JSON, INVALID_ARGUMENT for non-JSON", async () => {
    assert.deepEqual(await unary(clients.dispatcher, "DispatchEvent", { payload: '{"event": "test"}' }), {});
    await assert.rejects(unary(clients.dispatcher, "DispatchEvent", { payload: "<xml/>" }), (e: grpc.ServiceError) => {
      assert.equal(e.code, grpc.status.INVALID_ARGUMENT);
      assert.match(e.details, /not valid JSON/);
      return true;
    });
  });

  it("CreateUser with the tutorial's metadata (ip: 127.0.0.1), and its error cases", async () => {
    const md = new grpc.Metadata();
    md.set("ip", "127.0.0.1");
    const res = await unary<{ user: { username: string; user_id: number } }>(clients.users, "CreateUser", { username: "tom" }, md);
    assert.deepEqual(res.user, { username: "tom", user_id: 1 });
    const line = await server.waitForLog((l) => l.msg === "create user" && (l.metadata as Record<string, string>).ip === "127.0.0.1");
    assert.match((line.metadata as Record<string, string>)["user-agent"]!, /grpc-node-js/);

    for (const [req, code] of [
      [{ username: "" }, grpc.status.INVALID_ARGUMENT],
      [{ username: "   " }, grpc.status.INVALID_ARGUMENT],
      [{ username: "tom" }, grpc.status.ALREADY_EXISTS],
      [{ username: "eve", email: "eve@" }, grpc.status.INVALID_ARGUMENT],
    ] as const) {
      await assert.rejects(unary(clients.users, "CreateUser", req), (e: grpc.ServiceError) => e.code === code);
    }
  });

  it("GetUsers streams in request order and ends with NOT_FOUND after the users found", async () => {
    await unary(clients.users, "CreateUser", { username: "alexa" });
    await unary(clients.users, "CreateUser", { username: "christie" });
    const ok = await collectStream<{ user: { username: string } }>(
      (clients.users as any).GetUsers({ user: [{ username: "christie" }, { username: "alexa" }] }, { deadline: Date.now() + 10_000 }),
    );
    assert.equal(ok.error, undefined);
    assert.deepEqual(
      ok.messages.map((m) => m.user.username),
      ["christie", "alexa"],
    );

    const missing = await collectStream<{ user: { username: string } }>(
      (clients.users as any).GetUsers({ user: [{ username: "alexa" }, { username: "ghost" }] }),
    );
    assert.deepEqual(
      missing.messages.map((m) => m.user.username),
      ["alexa"],
    );
    assert.equal(missing.error?.code, grpc.status.NOT_FOUND);
    assert.match(missing.error!.details, /"ghost" not found/);
  });
});
