import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { Dispatcher, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { Users } from "../../gen/users_pb.js";
import type { Plugin } from "../../src/tyk/plugin.js";
import { verifyPassword } from "../../src/users/password.js";
import { inMemoryServer } from "../helpers/in-memory.js";

// The routes with an in-memory transport: no sockets, direct access to the
// store and the dispatch handler.

function setup(plugin?: Plugin) {
  return inMemoryServer(plugin ? { test: plugin } : {});
}

describe("routes (in-memory transport)", () => {
  it("CreateUser stores only a scrypt hash of the password, and the email", async () => {
    const { userStore, transport } = setup();
    const res = await createClient(Users, transport).createUser({ username: "tom", password: "pw", email: "tom@example.com" });
    assert.deepEqual([res.user?.username, res.user?.userId], ["tom", 1]);
    const stored = await userStore.findById(1);
    assert.equal(stored?.email, "tom@example.com");
    assert.notEqual(stored?.passwordHash, "pw");
    assert.equal(await verifyPassword("pw", stored!.passwordHash!), true);
    const noPassword = await createClient(Users, transport).createUser({ username: "ann" });
    assert.equal((await userStore.findById(noPassword.user!.userId))?.passwordHash, undefined);
  });

  it("GetUsers rejects an entry with neither id nor name before streaming anything", async () => {
    const { transport } = setup();
    const users = createClient(Users, transport);
    await users.createUser({ username: "tom" });
    const got: string[] = [];
    await assert.rejects(
      (async () => {
        for await (const r of users.getUsers({ user: [{ username: "tom" }, {}] })) got.push(r.user!.username);
      })(),
      (e) => ConnectError.from(e).code === Code.InvalidArgument && /user\[1\]/.test(ConnectError.from(e).rawMessage),
    );
    assert.deepEqual(got, []);
  });

  it("Dispatch runs the plugin registered for the hook type and name, and returns the edited Object", async () => {
    const { transport } = setup({ pre: { testPreHook1: (req) => void req.setHeader("Testheader", "testvalue") } });
    const sent = create(ObjectSchema, { hookType: HookType.Pre, hookName: "testPreHook1", request: { url: "/", method: "GET" } });
    const got = await createClient(Dispatcher, transport).dispatch(sent);
    assert.deepEqual(got.request?.setHeaders, { Testheader: "testvalue" });
    assert.equal(got.request?.url, "/");
  });

  it("a hook that throws becomes INTERNAL without details", async () => {
    const { transport } = setup({
      pre: {
        boom: () => {
          throw new Error("plugin bug with secret detail");
        },
      },
    });
    await assert.rejects(createClient(Dispatcher, transport).dispatch({ hookType: HookType.Pre, hookName: "boom" }), (e) => {
      const err = ConnectError.from(e);
      return err.code === Code.Internal && !err.rawMessage.includes("secret");
    });
  });
});
