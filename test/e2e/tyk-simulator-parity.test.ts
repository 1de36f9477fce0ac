import { strict as assert } from "node:assert";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { createGateway, type Gateway as Simulator } from "../../src/testing/create-gateway.js";
import { freePort } from "../helpers/free-port.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";
import { apiDefinitions, keyless, oasDefinition, pluginConfig } from "../helpers/tyk-e2e-setup.js";
import { type Gateway, gatewayBinary, gatewayRequest, startGateway, startRedis, startUpstream } from "../helpers/tyk-real-gateway.js";

// The gateway simulator (tyk-grpc-ts/testing) against the real Tyk Gateway:
// the same requests, through the same API definitions and plugins, must get
// the same answers. Each case says what the client and the upstream get;
// the simulator is held to that always, and with a gateway binary
// (TYK_GATEWAY_BIN) the real gateway is held to it too, and the two are
// compared field by field. The expectations are what the real gateway
// (v5.14.0) answered.

const upstreamUrl = "http://127.0.0.1:9"; // the simulator never connects; the real run uses its own upstream

/** What the upstream answers (both runs): repeated headers for /cookies, else 200 JSON naming the URL. */
function answer(url: string): { status?: number; headers?: Record<string, string | string[]>; body?: string } | undefined {
  return url.includes("/cookies") ? { headers: { "content-type": "text/plain", "set-cookie": ["a=1", "b=2"] }, body: "cookies" } : undefined;
}

interface Step {
  readonly method?: string;
  readonly url: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  /** What the client gets. */
  readonly status: number;
  readonly text?: string;
  /** Response headers to compare (lower-case names; undefined: must be absent). */
  readonly responseHeaders?: Record<string, string | undefined>;
  /** What reached the upstream: undefined means it was not called. */
  readonly upstream?: { readonly url: string; readonly headers?: Record<string, string | undefined>; readonly body?: string };
}

interface Case {
  readonly name: string;
  /** The api_id (Classic) or info.id (OAS) of the definition the requests go to. */
  readonly api: string;
  readonly steps: readonly Step[];
}

const errorJson = (message: string) => `{\n    "error": "${message}"\n}`;

const cases: Case[] = [
  {
    name: "a keyless API's Pre hook (echo-log): the upstream gets the request unchanged, the listen path stripped",
    api: "article",
    steps: [
      { url: "/article/get?name=tyk", headers: { "X-Custom": "kept" }, status: 200, upstream: { url: "/get?name=tyk", headers: { "x-custom": "kept" } } },
    ],
  },
  {
    name: "a Pre hook sets a header ('Pre Hook with SetHeaders')",
    api: "inject",
    steps: [{ url: "/inject/anything", status: 200, upstream: { url: "/anything", headers: { "x-tyk-plugin": "tyk-grpc-ts" } } }],
  },
  ...(["tyk-grpc-ts-classic", "tyk-grpc-ts-openapi"] as const).map((api) => {
    const path = api === "tyk-grpc-ts-classic" ? "/grpc-ts-classic" : "/grpc-ts-oas";
    return {
      name: `custom auth through every hook (${api === "tyk-grpc-ts-classic" ? "Classic" : "OAS"}): a good key, a bad one, none`,
      api,
      steps: [
        {
          url: `${path}/get`,
          headers: { Authorization: "demo-key-change-me" },
          status: 200,
          responseHeaders: { "x-served-through": "tyk-grpc-ts", "x-api-flavour": api === "tyk-grpc-ts-classic" ? "classic" : "oas" },
          upstream: { url: "/get", headers: { "x-tyk-plugin": "tyk-grpc-ts", "x-tyk-meta-team": "demo" } },
        },
        { url: `${path}/get`, headers: { Authorization: "not-a-key" }, status: 403, text: errorJson("Access denied: unknown key") },
        { url: `${path}/get`, status: 400, text: errorJson("Authorization field missing") },
      ],
    };
  }),
  {
    name: "the session's quota, from the auth hook, enforced by the gateway",
    api: "tyk-grpc-ts-classic",
    steps: [
      { url: "/grpc-ts-classic/get", headers: { Authorization: "quota-key" }, status: 200, upstream: { url: "/get" } },
      { url: "/grpc-ts-classic/get", headers: { Authorization: "quota-key" }, status: 200, upstream: { url: "/get" } },
      { url: "/grpc-ts-classic/get", headers: { Authorization: "quota-key" }, status: 403, text: errorJson("Quota exceeded") },
    ],
  },
  {
    name: "the session's rate limit, from the auth hook, enforced by the gateway",
    api: "tyk-grpc-ts-classic",
    steps: [
      { url: "/grpc-ts-classic/get", headers: { Authorization: "rate-key" }, status: 200, upstream: { url: "/get" } },
      { url: "/grpc-ts-classic/get", headers: { Authorization: "rate-key" }, status: 200, upstream: { url: "/get" } },
      { url: "/grpc-ts-classic/get", headers: { Authorization: "rate-key" }, status: 429, text: errorJson("Rate Limit Exceeded") },
    ],
  },
  {
    name: "a key-authenticated API: no key, an unknown key",
    api: "meta",
    steps: [
      { url: "/meta/get", status: 401, text: errorJson("Authorization field missing") },
      { url: "/meta/get", headers: { Authorization: "no-such-key" }, status: 403, text: errorJson("Access to this API has been disallowed") },
    ],
  },
  {
    name: "a Response hook rewrites status, body and headers from config_data; config_data_disabled hides it",
    api: "resp",
    steps: [
      {
        url: "/resp/get",
        status: 203,
        text: "newbody ✓",
        responseHeaders: {
          "x-rewritten": "yes",
          "x-config-data": "true",
          "content-type": "application/json",
          "content-length": String(Buffer.byteLength("newbody ✓")),
        },
        upstream: { url: "/get" },
      },
    ],
  },
  {
    name: "repeated response headers survive a Response hook",
    api: "resp-off",
    steps: [
      {
        url: "/resp-off/cookies",
        status: 200,
        text: "cookies",
        responseHeaders: { "set-cookie": "a=1, b=2", "x-config-data": "false" },
        upstream: { url: "/cookies" },
      },
    ],
  },
  {
    name: "return overrides: the error page, or the body as the hook sent it",
    api: "overrides",
    steps: [
      {
        url: "/overrides/get?status=200",
        status: 200,
        text: '{"foo": "bar"}',
        responseHeaders: { "x-foo": "Bar", "content-type": "text/plain; charset=utf-8" },
      },
      {
        url: "/overrides/get?status=400",
        status: 400,
        text: errorJson('{\\"foo\\": \\"bar\\"}'),
        responseHeaders: { "x-foo": "Bar", "content-type": "application/json" },
      },
      { url: "/overrides/get?status=401&body=text", status: 401, text: errorJson("foobar"), responseHeaders: { "x-foo": "Bar" } },
      { url: "/overrides/get?status=400&override_error=1", status: 400, text: '{"foo": "bar"}', responseHeaders: { "x-foo": "Bar" } },
    ],
  },
  {
    name: "reject(): the message escaped into the error page",
    api: "quote",
    steps: [{ url: "/quote/get", status: 400, text: errorJson('it’s \\u003Cb\\u003E \\u0026 \\"quoted\\" \\u003D \\\\ é ✓') }],
  },
  {
    name: "query and header edits ('ObjectPostProcess')",
    api: "edits",
    steps: [
      {
        url: "/edits/get?a=1&remove=me",
        headers: { Deletethisheader: "gone" },
        status: 200,
        upstream: { url: "/get?a=1&customparam=customvalue", headers: { test: "value", deletethisheader: undefined } },
      },
    ],
  },
  {
    name: "a JSON body reaches the upstream byte for byte",
    api: "bodies",
    steps: [
      {
        method: "POST",
        url: "/bodies/post",
        headers: { "Content-Type": "application/json" },
        body: '{"name":"tyk","unicode":"héllo ✓"}',
        status: 200,
        upstream: { url: "/post", body: '{"name":"tyk","unicode":"héllo ✓"}' },
      },
    ],
  },
  {
    name: "a hook that throws: 500 Middleware error",
    api: "throws",
    steps: [{ url: "/throws/get", status: 500, text: errorJson("Middleware error") }],
  },
];

/** The API definitions both runs use: the e2e suite's, and one whose Pre hook throws. */
function definitions(target: string): object[] {
  return [...apiDefinitions(target), oasDefinition(target), keyless("throws", `${target}/`, { pre: [{ name: "throws" }] })];
}

const idOf = (api: object) =>
  ((api as { api_id?: string }).api_id ?? (api as { "x-tyk-api-gateway": { info: { id: string } } })["x-tyk-api-gateway"].info.id) as string;

/** A response as both runs report it. */
interface Seen {
  status: number;
  text: string;
  header(name: string): string | undefined;
  upstream: { url: string; header(name: string): string | undefined; body: string } | undefined;
}

function assertStep(seen: Seen, step: Step, who: string): void {
  const where = `${who}: ${step.method ?? "GET"} ${step.url}`;
  assert.equal(seen.status, step.status, `${where}: status (body ${seen.text.slice(0, 200)})`);
  if (step.text !== undefined) assert.equal(seen.text, step.text, `${where}: body`);
  for (const [name, value] of Object.entries(step.responseHeaders ?? {})) assert.equal(seen.header(name), value, `${where}: response header ${name}`);
  if (step.upstream === undefined) {
    assert.equal(seen.upstream, undefined, `${where}: the upstream must not be called`);
    return;
  }
  assert.ok(seen.upstream, `${where}: the upstream must be called`);
  assert.equal(seen.upstream.url, step.upstream.url, `${where}: upstream URL`);
  for (const [name, value] of Object.entries(step.upstream.headers ?? {})) assert.equal(seen.upstream.header(name), value, `${where}: upstream header ${name}`);
  if (step.upstream.body !== undefined) assert.equal(seen.upstream.body, step.upstream.body, `${where}: upstream body`);
}

const dir = mkdtempSync(join(tmpdir(), "tyk-parity-"));
const config = JSON.parse(readFileSync(pluginConfig(dir), "utf8")) as { plugins: string[]; pluginOptions: Record<string, unknown> };

async function simulate(c: Case): Promise<Seen[]> {
  const api = definitions(upstreamUrl).find((a) => idOf(a) === c.api)!;
  const gateway: Simulator = await createGateway({
    plugins: config.plugins,
    pluginOptions: config.pluginOptions,
    api,
    upstream: (req) => answer(req.url) ?? { headers: { "content-type": "application/json" }, body: JSON.stringify({ upstream: true, url: req.url }) },
  });
  try {
    const seen: Seen[] = [];
    for (const step of c.steps) {
      const r = await gateway.request({
        method: step.method ?? "GET",
        url: step.url,
        headers: step.headers ?? {},
        ...(step.body !== undefined && { body: step.body }),
      });
      const up = r.upstream;
      seen.push({
        status: r.status,
        text: r.text,
        header: (name) => r.headers[Object.keys(r.headers).find((k) => k.toLowerCase() === name) ?? ""]?.join(", "),
        upstream: up && { url: up.url, header: (name) => up.headers[Object.keys(up.headers).find((k) => k.toLowerCase() === name) ?? ""], body: up.text },
      });
    }
    return seen;
  } finally {
    await gateway.close();
  }
}

describe("the gateway simulator does what the real gateway does", () => {
  for (const c of cases) {
    it(`simulator: ${c.name}`, async () => {
      const seen = await simulate(c);
      c.steps.forEach((step, i) => assertStep(seen[i]!, step, "simulator"));
    });
  }
});

const binary = gatewayBinary();
const missing = "missing" in binary ? binary.missing : undefined;

describe("the real Tyk Gateway, the same cases, compared with the simulator", { skip: missing }, () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let upstream: Awaited<ReturnType<typeof startUpstream>>;
  let plugins: ServerProcess;
  let gateway: Gateway;

  before(async () => {
    redis = await startRedis();
    upstream = await startUpstream((req) => answer(req.url));
    const listen = `127.0.0.1:${await freePort()}`;
    plugins = await startServerProcess(["--config", pluginConfig(dir), "--listen", listen, "--log-level", "info"]);
    const all = definitions(upstream.url);
    gateway = await startGateway(binary as { bin: string; templates: string }, {
      redisPort: redis.port,
      pluginTarget: `tcp://${listen}`,
      apis: all.filter((a) => "api_id" in a),
      oasApis: all.filter((a) => !("api_id" in a)),
    });
  });
  after(async () => {
    await gateway?.stop();
    await plugins?.stop();
    await upstream?.stop();
    await redis?.stop();
  });

  for (const c of cases) {
    it(`real gateway = simulator: ${c.name}`, async () => {
      const real: Seen[] = [];
      for (const step of c.steps) {
        const before = upstream.requests.length;
        const res = await gatewayRequest(gateway.baseUrl, step.url, {
          method: step.method ?? "GET",
          headers: step.headers ?? {},
          ...(step.body !== undefined && { body: step.body }),
        });
        const up = upstream.requests.length > before ? upstream.requests.at(-1)! : undefined;
        real.push({
          status: res.status,
          text: res.text,
          header: (name) => {
            const v = res.headers[name];
            return Array.isArray(v) ? v.join(", ") : v === undefined ? undefined : String(v);
          },
          upstream: up && {
            url: up.url,
            header: (name) => (up.headers[name] === undefined ? undefined : String(up.headers[name])),
            body: up.body.toString("utf8"),
          },
        });
      }
      c.steps.forEach((step, i) => assertStep(real[i]!, step, "real gateway"));
      const simulated = await simulate(c);
      c.steps.forEach((step, i) => {
        const [r, s] = [real[i]!, simulated[i]!];
        assert.deepEqual([s.status, s.text], [r.status, r.text], `${step.url}: the simulator's status and body`);
        assert.equal(s.upstream?.url, r.upstream?.url, `${step.url}: the simulator's upstream URL`);
      });
    });
  }
});
