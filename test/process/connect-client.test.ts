import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { equals, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { Dispatcher, EventReplySchema, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { Echo } from "../../gen/echo_pb.js";
import { Users } from "../../gen/users_pb.js";
import { articleObject } from "../helpers/fixtures.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// The real server process, called over the wire with the typed Connect
// clients generated from our protos.

describe("typed Connect gRPC client against the server process", () => {
  let server: ServerProcess;
  let transport: Transport;
  before(async () => {
    server = await startServerProcess();
    transport = createGrpcTransport({ baseUrl: server.baseUrl });
  });
  after(async () => {
    assert.equal(await server.stop(), 0);
  });

  it("Echo.Reply answers 'You said: <message>'", async () => {
    const res = await createClient(Echo, transport).reply({ message: "Hello World!" });
    assert.equal(res.message, "You said: Hello World!");
  });

  it("Dispatch returns the Tyk article's Pre-hook Object unchanged", async () => {
    const sent = articleObject();
    assert.equal(toBinary(ObjectSchema, sent).length, 380, "fixture is the article's 380-byte Object");
    const got = await createClient(Dispatcher, transport).dispatch(sent);
    assert.ok(equals(ObjectSchema, got, sent));
    assert.equal(got.hookType, HookType.Pre);
    assert.equal(got.request?.returnOverrides?.responseCode, -1);
  });

  it("DispatchEvent accepts a JSON payload and rejects anything else", async () => {
    const client = createClient(Dispatcher, transport);
    const reply = await client.dispatchEvent({ payload: '{"event": "test"}' });
    assert.equal(toBinary(EventReplySchema, reply).length, 0, "EventReply is empty");
    await assert.rejects(client.dispatchEvent({ payload: "not json" }), (e: unknown) => {
      const err = ConnectError.from(e);
      assert.equal(err.code, Code.InvalidArgument);
      assert.match(err.rawMessage, /not valid JSON/);
      return true;
    });
  });

  it("Users: ids in creation order, validation and uniqueness errors, streaming order and NOT_FOUND", async () => {
    const users = createClient(Users, transport);
    const a = await users.createUser({ username: "alexa", email: "alexa@example.com", password: "pw-1" });
    const c = await users.createUser({ username: "christie" });
    assert.deepEqual([a.user?.username, a.user?.userId], ["alexa", 1]);
    assert.deepEqual([c.user?.username, c.user?.userId], ["christie", 2]);

    const code = async (p: Promise<unknown>) =>
      ConnectError.from(
        await p.then(
          () => assert.fail("expected an error"),
          (e) => e,
        ),
      ).code;
    assert.equal(await code(users.createUser({ username: "" })), Code.InvalidArgument);
    assert.equal(await code(users.createUser({ username: "alexa" })), Code.AlreadyExists);
    assert.equal(await code(users.createUser({ username: "bob", email: "not-an-email" })), Code.InvalidArgument);

    const got = [];
    for await (const r of users.getUsers({ user: [{ username: "christie" }, { userId: 1 }] })) {
      got.push([r.user?.username, r.user?.userId]);
    }
    assert.deepEqual(got, [
      ["christie", 2],
      ["alexa", 1],
    ]);

    const all = [];
    for await (const r of users.getUsers({})) all.push(r.user?.userId);
    assert.deepEqual(all, [1, 2]);

    const before: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of users.getUsers({ user: [{ username: "alexa" }, { username: "nobody" }, { username: "christie" }] })) {
          before.push(r.user!.username);
        }
      })(),
      (e: unknown) => {
        const err = ConnectError.from(e);
        assert.equal(err.code, Code.NotFound);
        assert.match(err.rawMessage, /"nobody"/);
        return true;
      },
    );
    assert.deepEqual(before, ["alexa"], "users found before the missing one are streamed first");
  });

  it("serves gRPC-Web and Connect on the same port", async () => {
    for (const t of [
      createGrpcWebTransport({ baseUrl: server.baseUrl, httpVersion: "2" }),
      createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2" }),
      createConnectTransport({ baseUrl: server.baseUrl, httpVersion: "2", useBinaryFormat: true }),
    ]) {
      const res = await createClient(Echo, t).reply({ message: "x" });
      assert.equal(res.message, "You said: x");
    }
  });
});
