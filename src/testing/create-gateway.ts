import { readFileSync } from "node:fs";
import { clone, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { type SessionState, SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";
import type { HookMetricOutcome } from "../observability/metrics.js";
import { keepWireBytes, receivedBytesToReply } from "../rpc/wire-bytes.js";
import { type AnyPluginDefinition, asDefinition, loadPlugins, setUpPlugin } from "../tyk/load-plugins.js";
import type { SessionInit } from "../tyk/outcome.js";
import { PluginHost } from "../tyk/plugin-host.js";
import type { PluginRegistry } from "../tyk/registry.js";
import { type ApiModel, type HookRef, readApiDefinition } from "./api-definition.js";
import {
  type ApiSpec,
  applyAuthReply,
  applyRequestReply,
  applyResponseReply,
  canonicalHeader,
  errorPage,
  type HttpRequest,
  type HttpResponse,
  type RequestResult,
  requestObject,
  responseObject,
} from "./gateway-model.js";
import { replyWarnings } from "./reply-warnings.js";

/** A plugin for the simulator: a name or path as `--plugin` takes it, or a plugin module's default export (with its options). */
export type PluginInput = string | AnyPluginDefinition | { readonly plugin: AnyPluginDefinition; readonly options?: unknown; readonly name?: string };

/** The request the upstream gets, as the gateway proxies it. */
export interface UpstreamRequest {
  readonly method: string;
  /** Path and query on the upstream (the target URL's path joined with the request's, the listen path stripped if the API says so). */
  readonly url: string;
  /** Canonical header names (Go's), one value each. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
  /** The body as UTF-8 text. */
  readonly text: string;
}

/** What a fake upstream answers. */
export interface UpstreamResponse {
  readonly status?: number;
  /** A header's values (an array for a repeated header). */
  readonly headers?: Readonly<Record<string, string | readonly string[]>>;
  readonly body?: string | Uint8Array;
}

/** Settings of the simulated gateway. */
export interface GatewayOptions {
  /** The plugins, as the server would load them. */
  readonly plugins: readonly PluginInput[];
  /** Options of the plugins given by name or path, by that name (the config file's `pluginOptions`). */
  readonly pluginOptions?: Readonly<Record<string, unknown>>;
  /** The API definition: Classic or Tyk OAS, as parsed JSON or a path to the JSON file. */
  readonly api: object | string;
  /** The upstream (default: 200, JSON `{"upstream": true, "url": ...}`). */
  readonly upstream?: (req: UpstreamRequest) => UpstreamResponse | Promise<UpstreamResponse>;
  /** Keys the gateway has (created through its API), for an API that authenticates with keys. */
  readonly keys?: Readonly<Record<string, SessionInit>>;
  /** The time budget of one hook call (`--plugin-timeout`); default 5000 ms. */
  readonly timeoutMs?: number;
  /** The lowest level of the plugins' log lines kept; default "info". */
  readonly logLevel?: "trace" | "debug" | "info" | "warn" | "error";
}

/** An HTTP request to the gateway. */
export interface GatewayRequest {
  /** Default GET. */
  readonly method?: string;
  /** Path and query on the gateway, the API's listen path first: "/my-api/get?x=1". */
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
}

/** One hook the gateway called (or would have, had its cache not answered). */
export interface HookCall {
  /** "Pre", "CustomKeyCheck", "PostKeyAuth", "Post" or "Response". */
  readonly type: string;
  readonly name: string;
  /** The plugin that served it; undefined when none does (the request goes on unchanged). */
  readonly plugin: string | undefined;
  /** How it ended, as `tyk_hook_calls_total` counts it, or "cached" (the ID extractor's session was still valid). */
  readonly outcome: HookMetricOutcome | "cached";
  readonly ms: number;
  /** The gRPC error the gateway got, if the call failed. */
  readonly error?: string;
}

/** One log line the plugins (and the plugin host) wrote. */
export type LogLine = Record<string, unknown> & { readonly level: number; readonly msg?: string };

/** What the gateway would do with one request. */
export interface GatewayResult {
  /** What the client gets. */
  readonly status: number;
  /** Canonical header names, all values. */
  readonly headers: Readonly<Record<string, readonly string[]>>;
  /** A header's first value (any case), or undefined. */
  header(name: string): string | undefined;
  readonly body: Uint8Array;
  readonly text: string;
  /** The body parsed as JSON. */
  json(): unknown;
  /** Who answered: the upstream (through the response hooks), a hook (return_overrides), or the gateway itself (an error page). */
  readonly answeredBy: "upstream" | "hook" | "gateway";
  /** The request the upstream got; undefined when it was not called. */
  readonly upstream: UpstreamRequest | undefined;
  /** The hooks called, in the gateway's order. */
  readonly hooks: readonly HookCall[];
  /** The session the request ran with: the auth hook's (rate, quota, metadata, token, id_extractor_deadline) or the key's. */
  readonly session: SessionState | undefined;
  /** The key the session is stored under (the token, or the ID extractor's value). */
  readonly sessionKey: string | undefined;
  /** The log lines written while this request ran. */
  readonly logs: readonly LogLine[];
  /** Replies the gateway would act on differently from what they seem to mean. */
  readonly warnings: readonly string[];
}

/** A simulated Tyk Gateway with one API, running the real plugin host in this process. */
export interface Gateway {
  /** The API definition as the simulator read it. */
  readonly api: ApiModel;
  /** Runs a request through the gateway (one at a time, in the order they were made). */
  request(req: GatewayRequest): Promise<GatewayResult>;
  /** Every log line so far. */
  readonly logs: readonly LogLine[];
  /** Closes the plugins (their `close`). */
  close(): Promise<void>;
}

/**
 * A gateway simulator: loads the plugins into the real plugin host and, for
 * an HTTP request, does what Tyk Gateway does with the API definition given:
 * the hooks in its order (Pre, custom auth, PostKeyAuth, Post, the upstream,
 * Response), each sent the Object the gateway builds and each reply applied
 * the way the gateway applies it (gateway/coprocess.go), over the protobuf
 * encoding the gateway would see. Works with any test runner.
 */
export async function createGateway(options: GatewayOptions): Promise<Gateway> {
  const api = readApiDefinition(typeof options.api === "string" ? JSON.parse(readFileSync(options.api, "utf8")) : options.api);
  const logs: LogLine[] = [];
  const logger = pino({ level: options.logLevel ?? "info", base: undefined }, { write: (line: string) => logs.push(JSON.parse(line) as LogLine) });
  const registry = await pluginRegistry(options, logger);
  return new SimulatedGateway(api, registry, logs, logger, options);
}

async function pluginRegistry(options: GatewayOptions, logger: pino.Logger): Promise<PluginRegistry> {
  const paths = options.plugins.filter((p): p is string => typeof p === "string");
  const registry = await loadPlugins(paths, options.pluginOptions ?? {}, logger);
  let unnamed = 0;
  for (const input of options.plugins) {
    if (typeof input === "string") continue;
    const given = "plugin" in input ? input : { plugin: input, options: undefined, name: undefined };
    const definition = asDefinition(given.plugin);
    if (definition === undefined) {
      throw new Error("createGateway: a plugin is neither a name, a path, nor a definePlugin(...) default export");
    }
    await setUpPlugin(registry, { spec: given.name ?? `plugin-${++unnamed}`, file: undefined, definition, options: given.options }, logger);
  }
  return registry;
}

/** The request as it goes through the gateway, its body as bytes. */
type ProxiedRequest = HttpRequest & { body: Uint8Array };

type Answer = { status: number; headers: Record<string, string[]>; body: Uint8Array; answeredBy: GatewayResult["answeredBy"] };

/** What one request collects on its way through the gateway. */
class Trace {
  readonly hooks: HookCall[] = [];
  readonly warnings: string[] = [];
  upstream: UpstreamRequest | undefined;
  session: SessionState | undefined;
  sessionKey: string | undefined;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const bytes = (body: string | Uint8Array | undefined) => (typeof body === "string" ? encoder.encode(body) : (body ?? new Uint8Array()));

/** The gateway's JSON error page, as it sends it. */
function gatewayError(status: number, message: string, headers: Readonly<Record<string, string>> = {}): Answer {
  const h: Record<string, string[]> = Object.fromEntries(Object.entries(headers).map(([k, v]) => [canonicalHeader(k), [v]]));
  return {
    status,
    headers: { ...h, "Content-Type": ["application/json"], "X-Generator": ["tyk.io"] },
    body: encoder.encode(errorPage(message)),
    answeredBy: "gateway",
  };
}

class SimulatedGateway implements Gateway {
  readonly #host: PluginHost;
  readonly #registry: PluginRegistry;
  readonly #logger: pino.Logger;
  readonly #options: GatewayOptions;
  readonly #spec: ApiSpec;
  // Sessions by key: the gateway's keys, and those custom auth created.
  readonly #sessions = new Map<string, SessionState>();
  readonly #limits = new Map<string, { calls: number[]; quotaUsed: number }>();
  #lastOutcome: HookMetricOutcome = "continue";
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    readonly api: ApiModel,
    registry: PluginRegistry,
    readonly logs: LogLine[],
    logger: pino.Logger,
    options: GatewayOptions,
  ) {
    this.#registry = registry;
    this.#logger = logger;
    this.#options = options;
    this.#host = new PluginHost(registry, {
      logger,
      timeoutMs: options.timeoutMs ?? 5000,
      onHookDone: (_type, _name, outcome) => {
        this.#lastOutcome = outcome;
      },
    });
    this.#spec = { apiId: api.apiId, orgId: api.orgId, configData: api.configData, configDataDisabled: api.configData === undefined };
    for (const [key, session] of Object.entries(options.keys ?? {})) {
      this.#sessions.set(key, create(SessionStateSchema, session));
    }
  }

  request(req: GatewayRequest): Promise<GatewayResult> {
    const run = this.#queue.then(() => this.#run(req));
    this.#queue = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    await this.#registry.retire(this.#logger);
  }

  async #run(input: GatewayRequest): Promise<GatewayResult> {
    const firstLog = this.logs.length;
    const trace = new Trace();
    const answer = await this.#proxy(input, trace);
    const text = decoder.decode(answer.body);
    // Go's server, and the gateway after a Response hook, send the length of what is written.
    const headers: Record<string, string[]> = { ...answer.headers, "Content-Length": [String(answer.body.length)] };
    return {
      status: answer.status,
      headers,
      header: (name) => headers[canonicalHeader(name)]?.[0],
      body: answer.body,
      text,
      json: () => JSON.parse(text) as unknown,
      answeredBy: answer.answeredBy,
      upstream: trace.upstream,
      hooks: trace.hooks,
      session: trace.session,
      sessionKey: trace.sessionKey,
      logs: this.logs.slice(firstLog),
      warnings: trace.warnings,
    };
  }

  async #proxy(input: GatewayRequest, trace: Trace): Promise<Answer> {
    const { api } = this;
    const path = input.url.split("?")[0]!;
    if (!path.startsWith(api.listenPath) && `${path}/` !== api.listenPath) {
      throw new Error(`createGateway: ${input.url} is not under the API's listen path ${api.listenPath}`);
    }
    if (api.driver !== "grpc" && [api.pre, api.postKeyAuth, api.post, api.response].some((hooks) => hooks.length > 0)) {
      trace.warnings.push(`the API's custom_middleware driver is "${api.driver}", not "grpc": the gateway does not call this plugin server for its hooks`);
    }
    const canonical = Object.fromEntries(Object.entries(input.headers ?? {}).map(([k, v]) => [canonicalHeader(k), v]));
    let req: ProxiedRequest = { method: input.method ?? "GET", url: input.url, headers: canonical, body: bytes(input.body) };

    const pre = await this.#requestHooks(HookType.Pre, api.pre, req, trace);
    if ("status" in pre) return pre;
    req = pre;

    if (api.auth.kind === "key") {
      const key = req.headers[canonicalHeader(api.auth.header)];
      if (!key) return gatewayError(401, "Authorization field missing");
      const session = this.#sessions.get(key);
      if (session === undefined) return gatewayError(403, "Access to this API has been disallowed");
      trace.session = session;
      trace.sessionKey = key;
    } else if (api.auth.kind === "custom") {
      const done = await this.#customAuth(api.auth.hook, api.auth.idExtractorHeader, req, trace);
      if ("status" in done) return done;
      req = done;
    }
    if (trace.session !== undefined) {
      const limited = this.#limit(trace.sessionKey!, trace.session);
      if (limited !== undefined) return limited;
      const postKeyAuth = await this.#requestHooks(HookType.PostKeyAuth, api.postKeyAuth, req, trace);
      if ("status" in postKeyAuth) return postKeyAuth;
      req = postKeyAuth;
    }
    const post = await this.#requestHooks(HookType.Post, api.post, req, trace);
    if ("status" in post) return post;
    req = post;

    trace.upstream = this.#upstreamRequest(req);
    const upstreamAnswer = await (this.#options.upstream ?? defaultUpstream)(trace.upstream);
    let res: HttpResponse = {
      status: upstreamAnswer.status ?? 200,
      headers: Object.fromEntries(Object.entries(upstreamAnswer.headers ?? {}).map(([k, v]) => [canonicalHeader(k), typeof v === "string" ? [v] : [...v]])),
      body: bytes(upstreamAnswer.body),
    };
    for (const ref of api.response) {
      const sent = responseObject(ref.name, req, res, this.#spec, trace.session ?? create(SessionStateSchema));
      if (ref.rawBodyOnly) sent.response!.body = "";
      const replied = await this.#dispatch("Response", ref, sent, trace);
      if ("error" in replied) return gatewayError(500, "Middleware error");
      const applied = applyResponseReply(sent, replied.reply);
      if (applied.kind === "middleware-error") return gatewayError(500, "Middleware error");
      res = { status: applied.status, headers: applied.headers, body: applied.body };
    }
    return { status: res.status, headers: res.headers, body: bytes(res.body), answeredBy: "upstream" };
  }

  /** One hook type's hooks in order (Pre, PostKeyAuth or Post, with the session so far): the request they leave, or the answer one of them makes the gateway send. */
  async #requestHooks(type: HookType, refs: readonly HookRef[], req: ProxiedRequest, trace: Trace): Promise<ProxiedRequest | Answer> {
    let current = req;
    for (const ref of refs) {
      const done = await this.#requestHook(type, ref, current, trace);
      if ("status" in done) return done;
      current = done;
    }
    return current;
  }

  async #requestHook(type: HookType, ref: HookRef, req: ProxiedRequest, trace: Trace): Promise<ProxiedRequest | Answer> {
    const sent = requestObject(type, ref.name, req, this.#spec, trace.session, ref.rawBodyOnly);
    const replied = await this.#dispatch(HookType[type], ref, sent, trace);
    if ("error" in replied) return gatewayError(500, "Middleware error");
    const result = applyRequestReply(req, replied.reply);
    switch (result.kind) {
      case "continue":
        return result.request;
      default:
        return earlyAnswer(result);
    }
  }

  async #customAuth(ref: HookRef, extractorHeader: string | undefined, req: ProxiedRequest, trace: Trace) {
    let extracted: string | undefined;
    if (extractorHeader !== undefined) {
      extracted = req.headers[canonicalHeader(extractorHeader)];
      if (!extracted) return gatewayError(400, "Authorization field missing");
      const cached = this.#sessions.get(`extracted:${extracted}`);
      if (cached !== undefined && Number(cached.idExtractorDeadline) > Date.now() / 1000) {
        trace.hooks.push({ type: "CustomKeyCheck", name: ref.name, plugin: this.#pluginOf(HookType.CustomKeyCheck, ref.name), outcome: "cached", ms: 0 });
        trace.session = cached;
        trace.sessionKey = extracted;
        return req;
      }
    }
    const sent = requestObject(HookType.CustomKeyCheck, ref.name, req, this.#spec, undefined, ref.rawBodyOnly);
    const replied = await this.#dispatch("CustomKeyCheck", ref, sent, trace);
    if ("error" in replied) return gatewayError(403, "Key not authorised");
    const result = applyAuthReply(req, replied.reply);
    switch (result.kind) {
      case "authenticated": {
        const key = extracted ?? result.key;
        const storedUnder = extracted === undefined ? key : `extracted:${key}`;
        const stored = this.#sessions.get(storedUnder);
        const session = clone(SessionStateSchema, result.session);
        // An existing session keeps its quota counters (gateway/coprocess.go).
        if (stored !== undefined) {
          session.quotaRemaining = stored.quotaRemaining;
          session.quotaRenews = stored.quotaRenews;
        }
        this.#sessions.set(storedUnder, session);
        if (extracted === undefined && session.idExtractorDeadline > 0n) {
          trace.warnings.push(
            `CustomKeyCheck hook "${ref.name}" set an ID-extractor deadline (allow() ttlSeconds), but the API has no ID extractor: the gateway calls the hook on every request`,
          );
        }
        trace.session = session;
        trace.sessionKey = key;
        return result.request;
      }
      case "forbidden":
        return gatewayError(403, "Forbidden");
      default:
        return earlyAnswer(result);
    }
  }

  // The session's rate limit (a rolling window) and quota, as the gateway enforces them after auth.
  #limit(key: string, session: SessionState): Answer | undefined {
    const state = this.#limits.get(key) ?? { calls: [], quotaUsed: 0 };
    this.#limits.set(key, state);
    const now = Date.now();
    if (session.rate > 0 && session.per > 0) {
      state.calls = state.calls.filter((t) => t > now - session.per * 1000);
      if (state.calls.length >= session.rate) return gatewayError(429, "Rate Limit Exceeded");
      state.calls.push(now);
    }
    if (session.quotaMax > 0n) {
      if (BigInt(state.quotaUsed) >= session.quotaMax) return gatewayError(403, "Quota exceeded");
      state.quotaUsed++;
    }
    return undefined;
  }

  #pluginOf(type: HookType, name: string): string | undefined {
    return this.#registry.find(type, name, this.api.apiId)?.plugin;
  }

  // One Dispatch call as the server gets it: the Object encoded and decoded
  // (the fast path keeps the bytes), the reply encoded as the server would
  // send it and decoded as the gateway reads it.
  async #dispatch(type: string, ref: HookRef, sent: Object$, trace: Trace): Promise<{ reply: Object$ } | { error: ConnectError }> {
    const plugin = this.#pluginOf(sent.hookType, ref.name);
    if (plugin === undefined) {
      trace.warnings.push(`no plugin serves the ${type} hook "${ref.name}": the server replies with the Object unchanged (and logs that once)`);
    }
    const wire = toBinary(ObjectSchema, sent);
    const received = keepWireBytes(fromBinary(ObjectSchema, wire), wire);
    const started = performance.now();
    this.#lastOutcome = "continue";
    try {
      const answered = await this.#host.dispatch(received, { signal: new AbortController().signal });
      const reply = fromBinary(ObjectSchema, receivedBytesToReply(answered) ?? toBinary(ObjectSchema, answered));
      trace.hooks.push({ type, name: ref.name, plugin, outcome: plugin === undefined ? "no_plugin" : this.#lastOutcome, ms: performance.now() - started });
      trace.warnings.push(...replyWarnings({ type, name: ref.name }, sent, reply));
      return { reply };
    } catch (e) {
      const error = ConnectError.from(e);
      trace.hooks.push({ type, name: ref.name, plugin, outcome: this.#lastOutcome, ms: performance.now() - started, error: error.message });
      return { error };
    }
  }

  #upstreamRequest(req: ProxiedRequest): UpstreamRequest {
    if (!req.url.startsWith("/")) {
      throw new Error(
        `createGateway: the request's URL became ${req.url}; only paths on the API's own upstream are simulated (not tyk:// loops or other hosts)`,
      );
    }
    const [path = "/", query] = req.url.split(/\?(.*)/s);
    const { listenPath } = this.api;
    const rest = this.api.stripListenPath && path.startsWith(listenPath) ? `/${path.slice(listenPath.length)}` : path;
    const target = new URL(this.api.targetUrl || "http://upstream.invalid/");
    // Go's singleJoiningSlash (httputil.ReverseProxy).
    const base = target.pathname;
    const joined =
      base.endsWith("/") && rest.startsWith("/") ? base + rest.slice(1) : !base.endsWith("/") && !rest.startsWith("/") ? `${base}/${rest}` : base + rest;
    const url = query === undefined ? joined : `${joined}?${query}`;
    return { method: req.method, url, headers: { ...req.headers }, body: req.body, text: decoder.decode(req.body) };
  }
}

/** What the client gets when a reply ends the request: the error page, the hook's own answer, or a middleware error. */
function earlyAnswer(result: Exclude<RequestResult, { kind: "continue" }>): Answer {
  if (result.kind === "middleware-error") {
    return gatewayError(500, "Middleware error");
  }
  return {
    status: result.status,
    headers: headerLists(result.headers),
    body: encoder.encode(result.body),
    answeredBy: result.kind === "error" ? "gateway" : "hook",
  };
}

function headerLists(headers: Readonly<Record<string, string>>): Record<string, string[]> {
  return Object.fromEntries(Object.entries(headers).map(([k, v]) => [canonicalHeader(k), [v]]));
}

function defaultUpstream(req: UpstreamRequest): UpstreamResponse {
  return { status: 200, headers: { "Content-Type": "application/json" }, body: JSON.stringify({ upstream: true, url: req.url }) };
}
