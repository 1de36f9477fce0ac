import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { equals } from "@bufbuild/protobuf";
import * as v from "valibot";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { createGateway } from "../../src/testing/create-gateway.js";
import { requestObject } from "../../src/testing/gateway-model.js";
import { allow, definePlugin, reject } from "../../src/tyk/plugin.js";
import { PluginRegistry } from "../../src/tyk/registry.js";
import { startApp } from "../helpers/app.js";
import { silentLogger } from "../helpers/loggers.js";
import { GatewayClient } from "../helpers/tyk-gateway.js";
import { keylessApi } from "../helpers/tyk-real-gateway.js";

// The plugin API's routing, failure policies and schemas, through the
// gateway simulator (the real plugin host, each Object and reply encoded as
// on the wire), and fail-open over a real socket on both gRPC paths.

const api = (id: string, middleware: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
  keylessApi(id, "http://upstream.invalid/", { custom_middleware: { driver: "grpc", ...middleware }, ...extra });

const tag =
  (value: string) =>
  (req: { setHeader(name: string, value: string): unknown }): void => {
    req.setHeader("X-Served-By", value);
  };

describe("hooks per API", () => {
  const plugin = definePlugin(() => ({
    pre: { tagged: tag("global"), "*": tag("global *") },
    apis: {
      billing: { pre: { tagged: tag("billing"), "*": tag("billing *") } },
      search: { pre: { "*": tag("search *") } },
    },
  }));

  for (const [apiId, hookName, expected] of [
    ["billing", "tagged", "billing"],
    ["billing", "other", "billing *"],
    ["search", "tagged", "global"],
    ["search", "other", "search *"],
    ["orders", "tagged", "global"],
    ["orders", "other", "global *"],
  ] as const) {
    it(`API ${apiId}, hook ${hookName}: served by "${expected}" (the API's exact name, the global name, the API's *, the global *)`, async () => {
      const gateway = await createGateway({ plugins: [plugin], api: api(apiId, { pre: [{ name: hookName }] }) });
      const result = await gateway.request({ url: `/${apiId}/get` });
      assert.equal(result.status, 200);
      assert.equal(result.upstream?.headers["X-Served-By"], expected);
      await gateway.close();
    });
  }

  it("two plugins claiming the same hook of the same API is a start-up error naming both", async () => {
    const other = { plugin: definePlugin(() => ({ apis: { billing: { pre: { tagged: tag("again") } } } })), name: "other" };
    await assert.rejects(
      createGateway({ plugins: [{ plugin, name: "first" }, other], api: api("billing", {}) }),
      /"first" and "other" both define the pre hook "tagged" of API "billing"/,
    );
  });
});

describe("failure policy", () => {
  const plugin = definePlugin(() => ({
    pre: {
      closedThrow: (req) => {
        req.setHeader("X-Half", "done");
        throw new Error("bug");
      },
      openThrow: {
        onFailure: "open",
        run: (req) => {
          req.setHeader("X-Half", "done");
          throw new Error("bug");
        },
      },
      openHang: { onFailure: "open", run: () => new Promise<void>(() => undefined) },
    },
    response: {
      openResponse: {
        onFailure: "open",
        run: (res) => {
          res.setStatus(299);
          throw new Error("bug");
        },
      },
    },
  }));

  it("closed (the default): a throw is a 500 from the gateway, counted as error", async () => {
    const gateway = await createGateway({ plugins: [plugin], api: api("p", { pre: [{ name: "closedThrow" }] }) });
    const result = await gateway.request({ url: "/p/get" });
    assert.equal(result.status, 500);
    assert.deepEqual(result.json(), { error: "Middleware error" });
    assert.equal(result.upstream, undefined);
    assert.equal(result.hooks[0]?.outcome, "error");
    assert.ok(result.logs.some((l) => l.msg === "plugin failed" && l.level === 50));
  });

  it("open: a throw lets the request go on exactly as the gateway sent it (the half-made edit is not sent), counted as error_open", async () => {
    const gateway = await createGateway({ plugins: [plugin], api: api("p", { pre: [{ name: "openThrow" }] }) });
    const result = await gateway.request({ url: "/p/get", headers: { "X-Kept": "yes" } });
    assert.equal(result.status, 200);
    assert.equal(result.upstream?.headers["X-Kept"], "yes");
    assert.equal(result.upstream?.headers["X-Half"], undefined);
    assert.equal(result.hooks[0]?.outcome, "error_open");
    assert.ok(result.logs.some((l) => l.msg === "plugin failed: failing open, the request goes on as the gateway sent it"));
  });

  it("open: a timeout lets the request go on, counted as timeout_open", async () => {
    const gateway = await createGateway({ plugins: [plugin], api: api("p", { pre: [{ name: "openHang" }] }), timeoutMs: 50 });
    const result = await gateway.request({ url: "/p/get" });
    assert.equal(result.status, 200);
    assert.equal(result.hooks[0]?.outcome, "timeout_open");
  });

  it("open, in a Response hook: the client gets the upstream's response unchanged", async () => {
    const gateway = await createGateway({
      plugins: [plugin],
      api: api("p", { response: [{ name: "openResponse" }] }),
      upstream: () => ({ status: 201, body: "from upstream" }),
    });
    const result = await gateway.request({ url: "/p/get" });
    assert.deepEqual([result.status, result.text, result.hooks[0]?.outcome], [201, "from upstream", "error_open"]);
  });

  it("an auth hook cannot fail open: refused at start", async () => {
    const auth = definePlugin(() => ({ auth: { a: { onFailure: "open" as never, run: () => allow({}, { token: "t" }) } } }));
    await assert.rejects(createGateway({ plugins: [auth], api: api("p", {}) }), /the auth hook "a" cannot fail open/);
  });

  for (const fastPath of [true, false]) {
    it(`open, over a socket (fast path ${fastPath ? "on" : "off"}): the reply is the Object as sent`, async () => {
      const registry = new PluginRegistry();
      registry.add("t", await plugin.setup({ options: undefined, logger: silentLogger() }), silentLogger());
      const app = await startApp(["--fast-path", fastPath ? "on" : "off"], { registry });
      const client = new GatewayClient(app.url.replace("http://", ""));
      try {
        const sent = requestObject(HookType.Pre, "openThrow", { method: "GET", url: "/p/get", headers: { "X-Kept": "yes" } });
        const reply = await client.dispatch(sent);
        assert.ok(equals(ObjectSchema, reply, sent), "the reply equals the Object sent");
      } finally {
        client.close();
        await app.stop(1000);
      }
    });
  }
});

describe("config_data and pluginOptions schemas (Standard Schema: valibot here)", () => {
  const plugin = definePlugin({
    options: v.object({ header: v.pipe(v.string(), v.minLength(1)) }),
    config: v.object({ greeting: v.object({ text: v.string(), times: v.optional(v.number(), 1) }) }),
    setup: ({ options }) => ({
      pre: {
        greet: (req, ctx) => {
          // ctx.config is typed from the schema: no casts.
          req.setHeader(options.header, ctx.config.greeting.text.repeat(ctx.config.greeting.times));
        },
      },
    }),
  });
  const plugins = [{ plugin, options: { header: "X-Greeting" }, name: "greeter" }];

  it("valid config_data: the hook gets the schema's output (defaults filled in)", async () => {
    const gateway = await createGateway({ plugins, api: api("g", { pre: [{ name: "greet" }] }, { config_data: { greeting: { text: "hi" } } }) });
    const result = await gateway.request({ url: "/g/get" });
    assert.equal(result.upstream?.headers["X-Greeting"], "hi");
  });

  it("invalid config_data: the call fails (a 500 from the gateway) and the log names the field", async () => {
    const gateway = await createGateway({ plugins, api: api("g", { pre: [{ name: "greet" }] }, { config_data: { greeting: { text: 42 } } }) });
    const result = await gateway.request({ url: "/g/get" });
    assert.equal(result.status, 500);
    assert.equal(result.hooks[0]?.outcome, "invalid_config");
    const line = result.logs.find((l) => l.msg === "invalid config_data");
    assert.match(String(line?.reason), /plugin "greeter": the API's config_data is invalid: greeting\.text: Invalid type: Expected string but received 42/);
    assert.equal(line?.apiId, "g");
  });

  it("no config_data at all fails the schema too, saying so", async () => {
    const gateway = await createGateway({ plugins, api: api("g", { pre: [{ name: "greet" }] }) });
    const result = await gateway.request({ url: "/g/get" });
    assert.equal(result.status, 500);
    assert.match(
      String(result.logs.find((l) => l.msg === "invalid config_data")?.reason),
      /\(the whole value\): Invalid type: Expected Object but received undefined/,
    );
  });

  it("invalid pluginOptions stop the start, naming the field", async () => {
    await assert.rejects(
      createGateway({ plugins: [{ plugin, options: { header: "" }, name: "greeter" }], api: api("g", {}) }),
      /plugin "greeter": invalid pluginOptions\["greeter"\]: header: Invalid length: Expected >=1 but received 0/,
    );
  });
});

describe("the simulator's warnings", () => {
  const plugin = definePlugin(() => ({
    pre: {
      unprocessable: () => reject(422, "bad input"),
      // TykRequest keeps set and delete apart; an edit of the raw Object need not.
      both: (req, ctx) => {
        req.setHeader("X-Both", "set");
        (ctx.object.request!.deleteHeaders as string[]).push("x-both");
      },
    },
    auth: { longSession: () => allow({ rate: 10, per: 1 }, { token: "tok", ttlSeconds: 60 }) },
  }));

  it("reject(422): the gateway treats it as an auth failure", async () => {
    const gateway = await createGateway({ plugins: [plugin], api: api("w", { pre: [{ name: "unprocessable" }] }) });
    const result = await gateway.request({ url: "/w/get" });
    assert.equal(result.status, 422);
    assert.match(
      result.warnings.join("\n"),
      /answers 422 without override_error: the gateway handles every such answer as an authentication failure.*respond\(422, body\)/,
    );
  });

  it("a header set and deleted at once (through the raw Object)", async () => {
    const gateway = await createGateway({ plugins: [plugin], api: api("w", { pre: [{ name: "both" }] }) });
    const result = await gateway.request({ url: "/w/get", headers: { "X-Both": "sent" } });
    assert.equal(result.upstream?.headers["X-Both"], "set");
    assert.match(result.warnings.join("\n"), /both sets and deletes the header X-Both/);
  });

  it("an ID-extractor deadline on an API without an ID extractor, and a hook no plugin serves", async () => {
    const gateway = await createGateway({
      plugins: [plugin],
      api: api("w", { auth_check: { name: "longSession" }, post: [{ name: "nobody" }] }, { use_keyless: false, enable_coprocess_auth: true }),
    });
    const result = await gateway.request({ url: "/w/get" });
    assert.equal(result.status, 200);
    assert.equal(result.sessionKey, "tok");
    assert.equal(result.session?.rate, 10);
    const warnings = result.warnings.join("\n");
    assert.match(warnings, /set an ID-extractor deadline .* but the API has no ID extractor/);
    assert.match(warnings, /no plugin serves the Post hook "nobody"/);
    assert.deepEqual(
      result.hooks.map((h) => [h.type, h.name, h.outcome]),
      [
        ["CustomKeyCheck", "longSession", "allow"],
        ["Post", "nobody", "no_plugin"],
      ],
    );
  });
});

describe("reloads requested together", () => {
  it("reloads asked for before one starts share it; those asked for while it runs share one more", async () => {
    const app = await startApp(["--plugin", "echo-log"]);
    try {
      const together = await Promise.all(Array.from({ length: 3 }, () => app.reloadPlugins()));
      assert.deepEqual(
        together.map((r) => r.ok && r.generation),
        [1, 1, 1],
      );
      const first = app.reloadPlugins();
      await new Promise((r) => setImmediate(r)); // (the first has started: it is importing)
      const later = await Promise.all([first, ...Array.from({ length: 4 }, () => app.reloadPlugins())]);
      assert.deepEqual(
        later.map((r) => r.ok && r.generation),
        [2, 3, 3, 3, 3],
      );
      assert.deepEqual(app.registry.describe().plugins, ["echo-log"]);
    } finally {
      await app.stop(1000);
    }
  });
});
