import { strict as assert } from "node:assert";
import { after, before, describe, it } from "node:test";
import { createGateway, type Gateway } from "tyk-grpc-ts/testing";
import apiKeyAuth from "../plugins/api-key-auth.ts";
import securityHeaders from "../plugins/security-headers.ts";

// The plugins through a simulated Tyk Gateway with the API definition we
// deploy (apis/orders.json): what the client and the upstream would get.

describe("the Orders API", () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await createGateway({
      api: "apis/orders.json",
      plugins: [{ plugin: apiKeyAuth, options: { keys: { "team-a-key": { owner: "team-a", rate: 2 } } } }, { plugin: securityHeaders }],
      upstream: (req) => ({ status: 200, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ path: req.url }) }),
    });
  });
  after(() => gateway.close());

  it("a known key: the upstream is called without the listen path, the response gets the security headers", async () => {
    const res = await gateway.request({ url: "/orders/list?page=2", headers: { "X-Api-Key": "team-a-key" } });
    assert.equal(res.status, 200);
    assert.equal(res.upstream?.url, "/v2/list?page=2");
    assert.deepEqual(res.json(), { path: "/v2/list?page=2" });
    assert.equal(res.header("X-Frame-Options"), "DENY");
    assert.equal(res.header("Cache-Control"), "no-store");
    assert.equal(res.header("X-Caller"), "team-a");
    assert.equal(res.session?.metadata.owner, "team-a");
    assert.deepEqual(res.warnings, []);
  });

  it("the session is cached by the ID extractor, and its rate limit enforced by the gateway", async () => {
    const second = await gateway.request({ url: "/orders/list", headers: { "X-Api-Key": "team-a-key" } });
    assert.equal(second.hooks[0]?.outcome, "cached");
    const third = await gateway.request({ url: "/orders/list", headers: { "X-Api-Key": "team-a-key" } });
    assert.equal(third.status, 429);
  });

  it("an unknown key is refused with the gateway's error page; no key never reaches the plugin", async () => {
    const unknown = await gateway.request({ url: "/orders/list", headers: { "X-Api-Key": "guess" } });
    assert.equal(unknown.status, 403);
    assert.deepEqual(unknown.json(), { error: "unknown key" });
    assert.equal(unknown.upstream, undefined);
    const none = await gateway.request({ url: "/orders/list" });
    assert.equal(none.status, 400);
    assert.deepEqual(none.hooks, []);
  });
});

it("bad plugin options stop the start, naming the field", async () => {
  await assert.rejects(
    createGateway({ api: "apis/orders.json", plugins: [{ plugin: apiKeyAuth, options: { keys: { k: { rate: 1 } } }, name: "auth" }] }),
    /invalid pluginOptions\["auth"\]: keys\.k\.owner: Invalid key/,
  );
});
