// The Tyk plugin API: everything a plugin author needs is declared here.
//
// A plugin is one module under src/plugins/ whose default export is
// `definePlugin((init) => ({ name, pre: {...}, auth: {...}, ... }))`. It is
// enabled by naming it (`--plugin my-plugin`, PLUGINS=..., or the config
// file). Hooks are keyed by the hook name configured in the API definition;
// the key "*" catches every name of that hook type that has no hook of its own.

import type { JsonValue } from "@bufbuild/protobuf";
import type { HookType } from "../../gen/coprocess_common_pb.js";
import type { Object$ } from "../../gen/coprocess_object_pb.js";
import type { SessionState } from "../../gen/coprocess_session_state_pb.js";
import type { Logger } from "../observability/logger.js";
import type { TraceContext } from "../observability/trace-context.js";
import type { AuthOutcome, RequestOutcome } from "./outcome.js";
import type { TykRequest } from "./request.js";
import type { TykResponse } from "./response.js";

export type { TraceContext } from "../observability/trace-context.js";
export type { Allow, AuthOutcome, Reject, RequestOutcome, Respond, SessionInit } from "./outcome.js";
export { allow, deny, reject, respond } from "./outcome.js";
export type { TykRequest, TykRequestView } from "./request.js";
export type { TykResponse } from "./response.js";

/** Read-only facts about the hook call, for every hook type. */
export interface HookContext {
  readonly hookType: HookType;
  /** The hook's name in the API definition. */
  readonly hookName: string;
  /** `spec.APIID` */
  readonly apiId: string;
  /** `spec.OrgID` */
  readonly orgId: string;
  /**
   * The API's `config_data`, parsed from JSON; undefined when the gateway
   * sends none (empty, or `config_data_disabled`).
   */
  readonly config: JsonValue | undefined;
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
export type RequestHook = (req: TykRequest, ctx: HookContext) => HookResult<RequestOutcome>;

/**
 * Custom authentication (`auth_check`, hook type CustomKeyCheck): must
 * decide, with `allow(session, { token })`, `deny()`, `reject()` or `respond()`.
 */
export type AuthHook = (req: TykRequest, ctx: HookContext) => AuthOutcome | Promise<AuthOutcome>;

/** Response hooks: edit the upstream's response (status, headers, body). */
export type ResponseHook = (res: TykResponse, ctx: HookContext) => void | Promise<void>;

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
export type Hooks<H> = Readonly<Record<string, H>>;

/** A loaded plugin: its hooks per hook type and its event handlers. */
export interface Plugin {
  /** Shown in logs; defaults to the name the plugin was loaded by. */
  readonly name?: string;
  readonly pre?: Hooks<RequestHook>;
  readonly postKeyAuth?: Hooks<RequestHook>;
  readonly post?: Hooks<RequestHook>;
  /** Custom authentication (Tyk's `auth_check`, hook type CustomKeyCheck). */
  readonly auth?: Hooks<AuthHook>;
  readonly response?: Hooks<ResponseHook>;
  /** Event handlers by `handler_name`. */
  readonly events?: Hooks<EventHandler>;
}

/** What a plugin factory is given when the server starts. */
export interface PluginInit {
  /** This plugin's entry of `pluginOptions` in the config file (undefined if none). */
  readonly options: unknown;
  readonly logger: Logger;
}

/** Builds a plugin at start-up: read options, open clients, then return hooks. */
export type PluginFactory = (init: PluginInit) => Plugin | Promise<Plugin>;

/** Declares a plugin module's default export (an identity function that gives types). */
export function definePlugin(factory: PluginFactory): PluginFactory {
  return factory;
}
