// The Tyk plugin API: everything a plugin author needs is declared here, and
// packages import it as "tyk-grpc-ts/plugin".
//
// A plugin is one module whose default export is `definePlugin(...)`: a
// built-in one under src/plugins/ is enabled by name (`--plugin my-plugin`),
// any other by path (`--plugin ./plugins/auth.ts`; TypeScript loads without a
// build step). Hooks are keyed by the hook name configured in the API
// definition; the key "*" catches every name of that hook type that has no
// hook of its own. Hooks under `apis["<api id>"]` serve that API only.

import type { JsonValue } from "@bufbuild/protobuf";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { HookType } from "../../gen/coprocess_common_pb.js";
import type { Object$ } from "../../gen/coprocess_object_pb.js";
import type { SessionState } from "../../gen/coprocess_session_state_pb.js";
import type { Logger } from "../observability/logger.js";
import type { TraceContext } from "../observability/trace-context.js";
import type { AuthOutcome, RequestOutcome } from "./outcome.js";
import type { TykRequest } from "./request.js";
import type { TykResponse } from "./response.js";

export type { StandardSchemaV1 } from "@standard-schema/spec";
export type { TraceContext } from "../observability/trace-context.js";
export type { Allow, AuthOutcome, Reject, RequestOutcome, Respond, SessionInit } from "./outcome.js";
export { allow, deny, reject, respond } from "./outcome.js";
export type { TykRequest, TykRequestView } from "./request.js";
export type { TykResponse } from "./response.js";

/** What `ctx.config` is for a plugin without a config schema: the API's config_data as parsed JSON. */
export type ConfigData = JsonValue | undefined;

/** Read-only facts about the hook call, for every hook type. */
export interface HookContext<Config = ConfigData> {
  readonly hookType: HookType;
  /** The hook's name in the API definition. */
  readonly hookName: string;
  /** `spec.APIID` */
  readonly apiId: string;
  /** `spec.OrgID` */
  readonly orgId: string;
  /**
   * The API's `config_data`, parsed from JSON; undefined when the gateway
   * sends none (empty, or `config_data_disabled`). With a `config` schema in
   * definePlugin, the value that schema returned: the hook is not called when
   * the API's config_data fails it (the call fails, naming the field).
   */
  readonly config: Config;
  /**
   * The key's session: sent for PostKeyAuth, Post and Response hooks on
   * protected APIs; undefined for Pre and custom auth.
   */
  readonly session: Readonly<SessionState> | undefined;
  /** The session's metadata as the gateway sent it (empty when there is no session). */
  readonly metadata: Readonly<Record<string, string>>;
  /** Logger tagged with the plugin and hook. */
  readonly logger: Logger;
  /** Aborts when the hook's time budget runs out or the gateway cancels the call. */
  readonly signal: AbortSignal;
  /**
   * The Object as received, for anything the typed API does not cover.
   * Read-only: change the request with TykRequest or TykResponse and
   * outcomes. A request no hook changed that way is replied to with the
   * bytes it arrived in, so a change made here would not reach the gateway.
   */
  readonly object: Readonly<Object$>;
  /**
   * The W3C trace context the gateway sent with this call (Tyk 5.11+ with
   * OpenTelemetry on); undefined without one. Every line `logger` writes
   * for this call already carries its traceId and spanId.
   */
  readonly trace: TraceContext | undefined;
}

/** What a hook may return: its outcome, or nothing (where nothing means "continue"). */
// biome-ignore lint/suspicious/noConfusingVoidType: void, so that a hook written as `(req) => { req.setHeader(...) }` type-checks
export type HookResult<T> = T | void | Promise<T | void>;

/** Pre, PostKeyAuth and Post hooks: edit the request, or answer early. Returning nothing continues. */
export type RequestHook<Config = ConfigData> = (req: TykRequest, ctx: HookContext<Config>) => HookResult<RequestOutcome>;

/**
 * Custom authentication (`auth_check`, hook type CustomKeyCheck): must
 * decide, with `allow(session, { token })`, `deny()`, `reject()` or `respond()`.
 */
export type AuthHook<Config = ConfigData> = (req: TykRequest, ctx: HookContext<Config>) => AuthOutcome | Promise<AuthOutcome>;

/** Response hooks: edit the upstream's response (status, headers, body). */
export type ResponseHook<Config = ConfigData> = (res: TykResponse, ctx: HookContext<Config>) => void | Promise<void>;

/**
 * What the gateway gets when a hook throws or runs out of time. "closed"
 * (the default): the call fails, and the gateway answers 500 (403 for auth
 * hooks). "open": the request or response goes on exactly as the gateway sent
 * it, as if the hook were not there. Both are logged and counted
 * (`tyk_hook_calls_total` outcome `error`/`timeout`, or `error_open`/`timeout_open`).
 */
export type FailurePolicy = "closed" | "open";

/** A hook with its settings, where a bare function would take the defaults. */
export interface HookSpec<H, Policy extends FailurePolicy = FailurePolicy> {
  readonly run: H;
  /** Default "closed". */
  readonly onFailure?: Policy;
}

/** A hook: the function alone, or with its settings. */
export type HookEntry<H, Policy extends FailurePolicy = FailurePolicy> = H | HookSpec<H, Policy>;

/** A gateway event delivered to a `cp_dynamic_handler` event handler. */
export interface TykEvent {
  /** `message.Type`, e.g. "AuthFailure", "QuotaExceeded". */
  readonly type: string;
  /** `message.Meta`: the event's details (depends on the type). */
  readonly meta: Readonly<Record<string, unknown>>;
  /** `message.TimeStamp`, as Go formats it. */
  readonly timestamp: string;
  /** `handler_name`: the name in the API's `handler_meta`. */
  readonly handlerName: string;
  /** `spec.APIID` and `spec.OrgID`, when present. */
  readonly apiId: string | undefined;
  readonly orgId: string | undefined;
  /** The whole parsed payload. */
  readonly payload: JsonValue;
}

/** Handles events for one handler name. Errors are logged; the gateway is not told. */
export type EventHandler = (event: TykEvent, ctx: { readonly logger: Logger; readonly signal: AbortSignal }) => void | Promise<void>;

/** Hooks by hook name ("*": every name without its own hook). */
export type Hooks<H, Policy extends FailurePolicy = FailurePolicy> = Readonly<Record<string, HookEntry<H, Policy>>>;

/** Hooks per hook type: a plugin's global ones, or one API's. */
export interface HookSet<Config = ConfigData> {
  readonly pre?: Hooks<RequestHook<Config>>;
  readonly postKeyAuth?: Hooks<RequestHook<Config>>;
  readonly post?: Hooks<RequestHook<Config>>;
  /**
   * Custom authentication (Tyk's `auth_check`, hook type CustomKeyCheck).
   * Always fails closed: a failed auth hook has no session to go on with.
   */
  readonly auth?: Hooks<AuthHook<Config>, "closed">;
  readonly response?: Hooks<ResponseHook<Config>>;
}

/**
 * A loaded plugin: its hooks per hook type and its event handlers. For a
 * call, the most specific hook wins: this API's hook of that name, then the
 * global one of that name, then this API's "*", then the global "*".
 */
export interface Plugin<Config = ConfigData> extends HookSet<Config> {
  /** Shown in logs; defaults to the name the plugin was loaded by. */
  readonly name?: string;
  /** Hooks for one API only, by API id (`spec.APIID`): one gateway has one plugin server for all its APIs. */
  readonly apis?: Readonly<Record<string, HookSet<Config>>>;
  /** Event handlers by `handler_name`. */
  readonly events?: Readonly<Record<string, EventHandler>>;
  /**
   * Releases what setup opened (clients, timers). Called when a reload has
   * replaced this plugin and the calls in flight on it have ended, and when
   * the server stops.
   */
  readonly close?: () => void | Promise<void>;
}

/** What a plugin's setup is given when the server starts (and on each reload). */
export interface PluginInit<Options = unknown> {
  /**
   * This plugin's entry of `pluginOptions` in the config file (undefined if
   * none); with an `options` schema, the value that schema returned.
   */
  readonly options: Options;
  readonly logger: Logger;
}

/** Builds a plugin at start-up: read options, open clients, then return hooks. */
export type PluginFactory<Options = unknown, Config = ConfigData> = (init: PluginInit<Options>) => Plugin<Config> | Promise<Plugin<Config>>;

/**
 * A plugin module's default export, made by definePlugin. The schemas are
 * Standard Schema validators (valibot, zod, arktype, ...): their output types
 * become the types of `options` and `ctx.config`.
 */
export interface PluginDefinition<Options = unknown, Config = ConfigData> {
  /** Checks this plugin's `pluginOptions` entry at start: invalid options stop the server, naming the field. */
  readonly options?: StandardSchemaV1<unknown, Options>;
  /**
   * Checks the API's `config_data` (parsed JSON; undefined when the gateway
   * sends none) before each hook of this plugin runs. Must validate
   * synchronously. Invalid config_data fails the call, logged with the field.
   */
  readonly config?: StandardSchemaV1<unknown, Config>;
  readonly setup: PluginFactory<Options, Config>;
}

/** Declares a plugin module's default export: `definePlugin((init) => hooks)`, or with schemas `definePlugin({ options, config, setup })`. */
export function definePlugin<Options = unknown, Config = ConfigData>(setup: PluginFactory<Options, Config>): PluginDefinition<Options, Config>;
export function definePlugin<Options = unknown, Config = ConfigData>(definition: PluginDefinition<Options, Config>): PluginDefinition<Options, Config>;
export function definePlugin<Options, Config>(
  definition: PluginFactory<Options, Config> | PluginDefinition<Options, Config>,
): PluginDefinition<Options, Config> {
  return typeof definition === "function" ? { setup: definition } : definition;
}
