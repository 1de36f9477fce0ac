import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import * as http from "node:http";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { freePort } from "./free-port.js";

// The real Tyk Gateway and what it needs (Redis, an upstream), started as
// processes for the end-to-end suite (test/e2e/tyk-e2e.test.ts). The gateway is
// a binary the user points the tests at (TYK_GATEWAY_BIN, with its
// templates/ in TYK_GATEWAY_TEMPLATES or beside it), the way they would use
// one from Tyk's release or image; nothing here builds it.

/** Where the gateway binary and its templates are, or why they cannot be used. */
export function gatewayBinary(env = process.env): { bin: string; templates: string } | { missing: string } {
  const bin = env.TYK_GATEWAY_BIN;
  if (bin === undefined || bin === "") {
    return { missing: "TYK_GATEWAY_BIN is not set (a Tyk Gateway binary; see docs/testing.md)" };
  }
  if (!existsSync(bin)) {
    return { missing: `TYK_GATEWAY_BIN=${bin} does not exist` };
  }
  const templates = env.TYK_GATEWAY_TEMPLATES || join(dirname(bin), "templates");
  if (!existsSync(join(templates, "error.json"))) {
    return { missing: `no gateway templates in ${templates} (set TYK_GATEWAY_TEMPLATES to the gateway's templates/ folder)` };
  }
  return { bin, templates };
}

const running = new Set<ChildProcess>();
process.on("exit", () => running.forEach((c) => c.kill("SIGKILL")));

/** A process of the suite, its output collected. */
interface Child {
  readonly child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

function startChild(command: string, args: string[], cwd?: string): Child {
  const child = spawn(command, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  running.add(child);
  let output = "";
  child.stdout!.on("data", (d: Buffer) => (output += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (output += d.toString()));
  const exited = once(child, "exit").then(() => running.delete(child));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, output: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms; output:\n${output().slice(-4000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Redis (Debian's redis-server) on a free loopback port, without persistence. */
export async function startRedis(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = await freePort();
  const redis = startChild("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
  await until("redis-server listening", () => /Ready to accept connections/.test(redis.output()), 20_000, redis.output);
  return { port, stop: redis.stop };
}

/** One request as the upstream received it. */
export interface UpstreamRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Header names and values in order, repeated headers as they came. */
  readonly rawHeaders: string[];
  readonly body: Buffer;
}

/** How the upstream answers: status, headers (repeated values as arrays), body. */
export interface UpstreamAnswer {
  readonly status?: number;
  readonly headers?: http.OutgoingHttpHeaders;
  readonly body?: string | Buffer;
}

/** An HTTP/1.1 upstream that records every request; answers 200 JSON unless `answer` says otherwise. */
export async function startUpstream(answer: (req: UpstreamRequest) => UpstreamAnswer | undefined = () => undefined) {
  const requests: UpstreamRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (d: Buffer) => chunks.push(d));
    req.on("end", () => {
      const seen: UpstreamRequest = {
        method: req.method ?? "",
        url: req.url ?? "",
        headers: req.headers,
        rawHeaders: req.rawHeaders,
        body: Buffer.concat(chunks),
      };
      requests.push(seen);
      const a = answer(seen) ?? { headers: { "content-type": "application/json" }, body: JSON.stringify({ upstream: true, url: seen.url }) };
      res.writeHead(a.status ?? 200, a.headers ?? {}).end(a.body ?? "");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    /** The last request whose URL starts with `prefix`. */
    last: (prefix = "/") => [...requests].reverse().find((r) => r.url.startsWith(prefix)),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** What a gateway run needs. */
export interface GatewayOptions {
  readonly redisPort: number;
  /** coprocess_options.coprocess_grpc_server: tcp://host:port or unix:///path. */
  readonly pluginTarget: string;
  /** Classic API definitions, written to the app path. */
  readonly apis: readonly object[];
  /**
   * Tyk OAS API definitions, created through the Gateway API (POST
   * /tyk/apis/oas) once it runs: the gateway loads an OAS document from its
   * app path only as the pair of files it writes itself (a Classic
   * definition marked is_oas, and `<name>-oas.json`); a bare OAS document
   * there is read as a Classic one and skipped ("Listen path is empty").
   */
  readonly oasApis?: readonly object[];
  /** Policies by id. */
  readonly policies?: Record<string, object>;
  /** More coprocess_options (grpc_authority, message sizes). */
  readonly coprocess?: Record<string, unknown>;
  /** More top-level tyk.conf settings (opentelemetry, ...). */
  readonly conf?: Record<string, unknown>;
}

/** A running gateway. */
export interface Gateway {
  readonly baseUrl: string;
  readonly secret: string;
  output(): string;
  stop(): Promise<void>;
}

/** The gateway with a generated tyk.conf, on a free loopback port; resolves once it answers /hello with every API loaded. */
export async function startGateway(binary: { bin: string; templates: string }, options: GatewayOptions): Promise<Gateway> {
  const dir = mkdtempSync(join(tmpdir(), "tyk-gateway-"));
  const apps = join(dir, "apps");
  mkdirSync(apps);
  options.apis.forEach((api, i) => writeFileSync(join(apps, `api-${i}.json`), JSON.stringify(api, null, 2)));
  writeFileSync(join(dir, "policies.json"), JSON.stringify(options.policies ?? {}));
  const port = await freePort();
  const secret = "e2e-secret";
  const conf = {
    listen_address: "127.0.0.1",
    listen_port: port,
    secret,
    template_path: binary.templates,
    app_path: apps,
    use_db_app_configs: false,
    storage: { type: "redis", host: "127.0.0.1", port: options.redisPort },
    enable_analytics: false,
    policies: { policy_source: "file", policy_path: join(dir, "policies.json") },
    hash_keys: false,
    pid_file_location: join(dir, "tyk.pid"),
    coprocess_options: { enable_coprocess: true, coprocess_grpc_server: options.pluginTarget, ...options.coprocess },
    ...options.conf,
  };
  writeFileSync(join(dir, "tyk.conf"), JSON.stringify(conf, null, 2));
  const gateway = startChild(binary.bin, ["--conf", join(dir, "tyk.conf")], dir);
  const baseUrl = `http://127.0.0.1:${port}`;
  await until(
    "Tyk Gateway answering /hello with its APIs loaded",
    async () => {
      if (gateway.child.exitCode !== null) throw new Error(`the gateway exited (${gateway.child.exitCode}):\n${gateway.output().slice(-4000)}`);
      if (!/API reload complete/.test(gateway.output())) return false;
      return fetch(`${baseUrl}/hello`).then(
        (r) => r.ok,
        () => false,
      );
    },
    60_000,
    gateway.output,
  );
  for (const api of options.oasApis ?? []) {
    const created = await fetch(`${baseUrl}/tyk/apis/oas`, {
      method: "POST",
      headers: { "x-tyk-authorization": secret, "content-type": "application/json" },
      body: JSON.stringify(api),
    });
    if (!created.ok) throw new Error(`POST /tyk/apis/oas: ${created.status} ${await created.text()}`);
  }
  if ((options.oasApis ?? []).length > 0) {
    const reloads = (gateway.output().match(/API reload complete/g) ?? []).length;
    await fetch(`${baseUrl}/tyk/reload/group`, { headers: { "x-tyk-authorization": secret } });
    await until("the gateway reloading its APIs", () => (gateway.output().match(/API reload complete/g) ?? []).length > reloads, 30_000, gateway.output);
  }
  return { baseUrl, secret, output: gateway.output, stop: gateway.stop };
}

/** What a client of the gateway got. */
export interface GatewayResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly rawHeaders: string[];
  readonly body: Buffer;
  readonly text: string;
}

/** One HTTP/1.1 request to the gateway with exactly these headers (arrays: the header repeated). */
export function gatewayRequest(
  baseUrl: string,
  path: string,
  init: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {},
): Promise<GatewayResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${baseUrl}${path}`, { method: init.method ?? "GET", headers: init.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (d: Buffer) => chunks.push(d));
      res.on("end", () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body, text: body.toString("utf8") });
      });
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(init.body);
  });
}

const versions = { not_versioned: true, versions: { Default: { name: "Default" } } };

/** A keyless Classic API definition on `/<id>/` in front of `target`; `extra` adds or overrides fields. */
export function keylessApi(id: string, target: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name: id,
    api_id: id,
    org_id: "default",
    active: true,
    use_keyless: true,
    proxy: { listen_path: `/${id}/`, target_url: target, strip_listen_path: true },
    version_data: versions,
    ...extra,
  };
}
