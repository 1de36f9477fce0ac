import { clone, create, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { MiniRequestObjectSchema } from "../../gen/coprocess_mini_request_object_pb.js";
import { type Object$, ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { ReturnOverridesSchema } from "../../gen/coprocess_return_overrides_pb.js";
import { SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";
import type { Logger } from "../observability/logger.js";
import type { HookMetricOutcome } from "../observability/metrics.js";
import { currentTrace, type TraceContext } from "../observability/trace-context.js";
import { replyAsReceived, wireBytesOf } from "../rpc/wire-bytes.js";
import { isPromiseLike, type MaybePromise, then } from "../util/maybe-promise.js";
import type { ConfigData } from "./config-data.js";
import type { DispatchObserver, HookReport } from "./dispatch-observer.js";
import { parseTykEvent } from "./events.js";
import { checkHeaderName, checkHeaderValue } from "./http-fields.js";
import type { AuthOutcome, OutcomeHeaders, RequestOutcome } from "./outcome.js";
import type { HookContext } from "./plugin.js";
import type { PluginRegistry, RegisteredHook } from "./registry.js";
import { editedThrough, TykRequest, TykRequestView } from "./request.js";
import { TykResponse } from "./response.js";

/** How a hook call ended, for logs (and metrics). */
export type HookOutcome = "continue" | "reject" | "respond" | "allow";

/** The gRPC call's cancellation, read only when needed (a HandlerContext fits). */
export interface CallSignal {
  readonly signal: AbortSignal;
}

/** Settings of the plugin runtime. */
export interface PluginHostOptions {
  readonly logger: Logger;
  /** Time budget of one hook or event handler call; the gateway sets no deadline of its own. */
  readonly timeoutMs: number;
  /** Told how each hook call ended (metrics). */
  readonly onHookDone?: (hookType: string, hookName: string, outcome: HookMetricOutcome) => void;
  /** Sees whole calls while it watches (the call inspector). */
  readonly observer?: DispatchObserver;
}

/**
 * Runs the registered plugins for Dispatch and DispatchEvent calls: picks the
 * hook by hook type and name, gives it typed views of the Object, applies what
 * it returns to the Object, and returns that Object as the reply. Since the
 * Object the gateway sent is edited in place, the reply always keeps the
 * fields the gateway dereferences (request, url, method, raw_body,
 * return_overrides; response for Response hooks).
 */
export class PluginHost {
  #registry: PluginRegistry;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #warned = new Set<string>();
  readonly #onHookDone: NonNullable<PluginHostOptions["onHookDone"]>;
  readonly #observer: DispatchObserver | undefined;

  constructor(registry: PluginRegistry, options: PluginHostOptions) {
    this.#registry = registry;
    this.#logger = options.logger;
    this.#timeoutMs = options.timeoutMs;
    this.#onHookDone = options.onHookDone ?? (() => undefined);
    this.#observer = options.observer;
  }

  /** The plugins new calls run on. */
  get registry(): PluginRegistry {
    return this.#registry;
  }

  /**
   * Makes new calls run on `registry` (a reload) and returns the one they
   * ran on: calls in flight finish on it, so retire it rather than drop it.
   */
  replace(registry: PluginRegistry): PluginRegistry {
    const old = this.#registry;
    this.#registry = registry;
    this.#warned.clear();
    return old;
  }

  /**
   * Handles one Dispatch call; throws a ConnectError when the plugin fails,
   * runs out of time, or the call ends first (unless the hook fails open).
   * Synchronous (no promise, no timer) when the hook is, as most are;
   * `call.signal` (the gRPC call's) is read only if the hook is
   * asynchronous or reads its own signal: creating signals costs more than
   * most hooks.
   */
  dispatch(object: Object$, call: CallSignal): MaybePromise<Object$> {
    const observer = this.#observer;
    if (observer?.watching === true) {
      return observer.observe(object, (report) => this.#dispatch(object, call, report));
    }
    return this.#dispatch(object, call, undefined);
  }

  #dispatch(object: Object$, call: CallSignal, report: HookReport | undefined): MaybePromise<Object$> {
    const registry = this.#registry;
    const found = registry.find(object.hookType, object.hookName, object.spec.APIID);
    if (found === undefined) {
      this.#warnUnknown(object);
      this.#done(object, object.hookName, undefined, "no_plugin", report);
      replyAsReceived(object);
      return object;
    }
    // With a schema, config_data is checked before the hook runs (the answer
    // is remembered per string; the hook reads it from there again).
    if (found.config.schema !== undefined) {
      try {
        found.config.value(object.spec.config_data);
      } catch (e) {
        this.#done(object, found.name, found.plugin, "invalid_config", report);
        this.#logger.error(
          { plugin: found.plugin, what: hookDescription(found, object), apiId: object.spec.APIID, reason: (e as Error).message },
          "invalid config_data",
        );
        throw e;
      }
    }
    // Failing open sends the Object as the gateway sent it, whatever the hook
    // changed before it failed: the received bytes when the fast path kept
    // them, else a copy taken now.
    const asSent = found.failOpen && wireBytesOf(object) === undefined ? clone(ObjectSchema, object) : undefined;
    const budget = new HookBudget(found.plugin, call, this.#timeoutMs);
    let outcome: MaybePromise<HookOutcome>;
    try {
      outcome = runHook(found, object, new CallHookContext(object, found.logger, budget, found.config));
    } catch (e) {
      budget.end();
      return this.#hookFailed(found, object, asSent, budget, e, report);
    }
    if (!isPromiseLike(outcome)) {
      budget.end();
      return this.#hookDone(found, object, outcome, report);
    }
    registry.enter();
    return budget
      .race(outcome, () => hookDescription(found, object))
      .then(
        (settled) => this.#hookDone(found, object, settled, report),
        (e: unknown) => this.#hookFailed(found, object, asSent, budget, e, report),
      )
      .finally(() => registry.leave());
  }

  /**
   * Handles one DispatchEvent payload (already parsed JSON): runs the handler
   * named by `handler_name`. Handler failures are logged, never returned: the
   * gateway does not wait for events.
   */
  async event(payload: JsonValue, call: CallSignal): Promise<void> {
    const event = parseTykEvent(payload);
    if (event === undefined) {
      return; // not a Tyk event (e.g. a hand-made test payload): logged by the caller, nothing to run
    }
    const registry = this.#registry;
    const found = registry.handler(event.handlerName);
    if (found === undefined) {
      this.#logger.warn({ handlerName: event.handlerName, eventType: event.type }, "no event handler registered under this name");
      return;
    }
    registry.enter();
    const budget = new HookBudget(found.plugin, call, this.#timeoutMs);
    const what = `event handler "${event.handlerName}"`;
    try {
      const done = found.handler(event, {
        logger: found.logger,
        get signal() {
          return budget.signal;
        },
      });
      if (isPromiseLike(done)) {
        await budget.race(done, () => what);
      }
    } catch (e) {
      this.#failure(found.plugin, what, budget, e); // logged; the reply to the gateway stays EventReply{}
    } finally {
      budget.end(); // (idempotent: race() has ended it already when there was a promise)
      registry.leave();
    }
  }

  // Counted by the registered name ("*" for the catch-all): names the caller chose are unbounded.
  #done(object: Object$, name: string, plugin: string | undefined, outcome: HookMetricOutcome, report: HookReport | undefined): void {
    this.#onHookDone(hookTypeName(object), name, outcome);
    report?.(plugin, outcome);
  }

  #hookDone(found: RegisteredHook, object: Object$, outcome: HookOutcome, report: HookReport | undefined): Object$ {
    this.#done(object, found.name, found.plugin, found.kind === "auth" && outcome === "reject" ? "deny" : outcome, report);
    if (this.#logger.isLevelEnabled("debug")) {
      this.#logger.debug({ plugin: found.plugin, hookType: HookType[object.hookType], hookName: object.hookName, outcome }, "hook done");
    }
    return object;
  }

  // Fails the call (closed), or answers with the Object as sent (open).
  // (The budget has ended: race() ends it when it settles.)
  #hookFailed(found: RegisteredHook, object: Object$, asSent: Object$ | undefined, budget: HookBudget, e: unknown, report: HookReport | undefined): Object$ {
    const how = failure(budget, e);
    // A call that ended first has nobody to answer: failing open would be for nothing.
    const open = found.failOpen && how !== "abandoned";
    const error = this.#failure(found.plugin, hookDescription(found, object), budget, e, open);
    if (!open) {
      this.#done(object, found.name, found.plugin, how === "timeout" ? "timeout" : "error", report);
      throw error;
    }
    this.#done(object, found.name, found.plugin, how === "timeout" ? "timeout_open" : "error_open", report);
    if (asSent !== undefined) {
      return asSent;
    }
    replyAsReceived(object);
    return object;
  }

  // Logs why a hook or event handler failed and returns the error for the
  // caller: its budget ran out, the call ended first, or the plugin threw.
  #failure(plugin: string, what: string, budget: HookBudget, e: unknown, failOpen = false): ConnectError {
    const open = failOpen ? ": failing open, the request goes on as the gateway sent it" : "";
    switch (failure(budget, e)) {
      case "timeout":
        this.#logger.error({ plugin, what, timeoutMs: this.#timeoutMs }, `plugin timed out${open}`);
        return budget.expired!;
      case "abandoned":
        this.#logger.warn({ plugin, what, reason: ConnectError.from(e).message }, "the call ended while the plugin ran: abandoned");
        return ConnectError.from(e);
      case "threw":
        this.#logger.error({ plugin, what, err: e }, `plugin failed${open}`);
        return new ConnectError(`plugin "${plugin}" failed in ${what}`, Code.Internal, undefined, undefined, e);
    }
  }

  #warnUnknown(object: Object$): void {
    const key = `${object.hookType}/${object.hookName}`;
    if (this.#warned.has(key) || this.#warned.size > maxWarnedHooks) {
      return;
    }
    this.#warned.add(key);
    this.#logger.warn(
      { hookType: HookType[object.hookType] ?? object.hookType, hookName: object.hookName },
      "no plugin for this hook: passing the request through unchanged (logged once per hook name)",
    );
    if (this.#warned.size > maxWarnedHooks) {
      this.#logger.warn({ hookNames: maxWarnedHooks }, "too many unknown hook names: no more warnings about them");
    }
  }
}

/** Why a hook or event handler call failed: its budget ran out, the gRPC call ended first, or the plugin threw. */
function failure(budget: HookBudget, e: unknown): "timeout" | "abandoned" | "threw" {
  if (e !== undefined && e === budget.expired) {
    return "timeout";
  }
  const callSignal = budget.call.signal;
  return callSignal.aborted && e === callSignal.reason ? "abandoned" : "threw";
}

// Hook names are the caller's to choose: remembering every unknown one
// would let a caller grow the server's memory without bound.
const maxWarnedHooks = 1000;

function hookDescription(found: RegisteredHook, object: Object$): string {
  return found.apiId === undefined ? `${found.kind} hook "${object.hookName}"` : `${found.kind} hook "${object.hookName}" of API "${found.apiId}"`;
}

function hookTypeName(object: Object$): string {
  return HookType[object.hookType] ?? String(object.hookType);
}

/**
 * One hook or event handler call's time budget. Its AbortSignal (made only
 * when the plugin reads it) fires when the budget runs out or the gRPC call
 * ends. A hook that returns synchronously cannot overrun its budget (it held
 * the event loop all along), so only a returned promise is raced against it.
 */
class HookBudget {
  /** Set when the budget ran out while the plugin's promise was pending. */
  expired: ConnectError | undefined;
  #controller: AbortController | undefined;
  #onCallAbort: (() => void) | undefined;

  constructor(
    readonly plugin: string,
    readonly call: CallSignal,
    readonly timeoutMs: number,
  ) {}

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      const controller = (this.#controller = new AbortController());
      const callSignal = this.call.signal;
      if (this.expired !== undefined) {
        controller.abort(this.expired);
      } else if (callSignal.aborted) {
        controller.abort(callSignal.reason);
      } else {
        this.#onCallAbort = () => controller.abort(callSignal.reason);
        callSignal.addEventListener("abort", this.#onCallAbort, { once: true });
      }
    }
    return this.#controller.signal;
  }

  /**
   * The plugin's promise, abandoned at the budget or when the call ends
   * first (deadline, cancellation, shutdown): nobody waits for its answer then.
   */
  race<T>(result: Promise<T>, what: () => string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    let onCallEnd: (() => void) | undefined;
    const callSignal = this.call.signal;
    const abandoned = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.expired = new ConnectError(`plugin "${this.plugin}" exceeded its ${this.timeoutMs} ms budget in ${what()}`, Code.DeadlineExceeded);
        this.#controller?.abort(this.expired);
        reject(this.expired);
      }, this.timeoutMs);
      onCallEnd = () => reject(callSignal.reason);
      if (callSignal.aborted) {
        onCallEnd();
      } else {
        callSignal.addEventListener("abort", onCallEnd, { once: true });
      }
    });
    return Promise.race([result, abandoned]).finally(() => {
      clearTimeout(timer);
      callSignal.removeEventListener("abort", onCallEnd!);
      this.end();
    });
  }

  /** Unlinks the budget's signal from the call's. */
  end(): void {
    if (this.#onCallAbort !== undefined) {
      this.call.signal.removeEventListener("abort", this.#onCallAbort);
      this.#onCallAbort = undefined;
    }
  }
}

// Synchronous when the hook is (most are): no promise, no timer.
function runHook(found: RegisteredHook, object: Object$, ctx: HookContext<unknown>): HookOutcome | Promise<HookOutcome> {
  const complete = object.request?.returnOverrides !== undefined;
  // The gateway always sends these; a hand-made Object may not, and the
  // gateway would crash on a reply without them.
  object.request ??= create(MiniRequestObjectSchema);
  object.request.returnOverrides ??= create(ReturnOverridesSchema, { responseCode: -1 });
  switch (found.kind) {
    case "pre":
    case "postKeyAuth":
    case "post": {
      const req = new TykRequest(object.request);
      return then(found.hook(req, ctx), (result) => {
        const outcome = applyRequestOutcome(object, result);
        // Every change a hook can make goes through req or an outcome, so
        // this Object is still the one the gateway sent.
        if (outcome === "continue" && complete && !editedThrough(req)) {
          replyAsReceived(object);
        }
        return outcome;
      });
    }
    case "auth":
      return then(found.hook(new TykRequest(object.request), ctx), (outcome) => applyAuthOutcome(object, outcome));
    case "response":
      if (object.response === undefined) {
        throw new ConnectError("Response hook called without a response object", Code.InvalidArgument);
      }
      return then(found.hook(new TykResponse(object.response, new TykRequestView(object.request)), ctx), () => "continue" as const);
  }
}

// biome-ignore lint/suspicious/noConfusingVoidType: what a RequestHook resolves to (HookResult)
function applyRequestOutcome(object: Object$, outcome: RequestOutcome | void): HookOutcome {
  if (outcome === undefined) {
    return "continue";
  }
  const ro = object.request!.returnOverrides!;
  const headers = checkedHeaders(outcome.headers);
  switch (outcome.kind) {
    case "reject": {
      checkStatus(outcome.status, 400, "reject()");
      // The gateway copies response_error into response_body and renders its error template,
      // JS-escaping the message (Go's JSEscapeString), which turns ' into \' : invalid JSON
      // (seen against the real gateway). A typographic apostrophe reads the same.
      const message = outcome.message.replaceAll("'", "\u2019");
      Object.assign(ro, { responseCode: outcome.status, responseError: message, responseBody: message, overrideError: false, headers });
      return "reject";
    }
    case "respond":
      checkStatus(outcome.status, 100, "respond()");
      // override_error makes a >= 400 answer carry the body verbatim instead of the error template.
      Object.assign(ro, { responseCode: outcome.status, responseError: "", responseBody: outcome.body, overrideError: outcome.status >= 400, headers });
      return "respond";
    default:
      throw new TypeError(`a request hook returned an unknown outcome: ${JSON.stringify(outcome)}`);
  }
}

// biome-ignore lint/suspicious/noConfusingVoidType: what an AuthHook resolves to (HookResult)
function applyAuthOutcome(object: Object$, outcome: AuthOutcome | void): HookOutcome {
  if (outcome === undefined) {
    throw new TypeError("an auth hook must return allow(...), deny(...), reject(...) or respond(...)");
  }
  if (outcome.kind !== "allow") {
    return applyRequestOutcome(object, outcome);
  }
  if (outcome.token === "") {
    throw new TypeError("allow() needs a non-empty token: the gateway refuses a session without one");
  }
  const session = create(SessionStateSchema, outcome.session);
  session.metadata.token = outcome.token;
  if (outcome.ttlSeconds !== undefined) {
    if (!(outcome.ttlSeconds > 0)) {
      throw new TypeError(`allow() ttlSeconds must be positive, got ${outcome.ttlSeconds}`);
    }
    // The gateway compares id_extractor_deadline with the time in Unix seconds.
    session.idExtractorDeadline = BigInt(Math.floor(Date.now() / 1000) + Math.ceil(outcome.ttlSeconds));
  }
  object.session = session;
  object.metadata.token = outcome.token;
  return "allow";
}

function checkStatus(status: number, min: number, what: string): void {
  if (!Number.isInteger(status) || status < min || status > 599) {
    throw new TypeError(`${what} status must be an integer from ${min} to 599, got ${status}`);
  }
}

function checkedHeaders(headers: OutcomeHeaders): Record<string, string> {
  for (const [name, value] of Object.entries(headers)) {
    checkHeaderName(name);
    checkHeaderValue(name, value);
  }
  return { ...headers };
}

// A class rather than an object literal with getters: V8 builds literals
// with accessors on a slow path, and this is made on every hook call.
class CallHookContext implements HookContext<unknown> {
  readonly hookType: HookType;
  readonly hookName: string;
  readonly apiId: string;
  readonly orgId: string;
  readonly session: Object$["session"];
  readonly metadata: Object$["metadata"];
  readonly #budget: HookBudget;
  readonly #config: ConfigData;

  constructor(
    readonly object: Object$,
    readonly logger: Logger,
    budget: HookBudget,
    config: ConfigData,
  ) {
    this.hookType = object.hookType;
    this.hookName = object.hookName;
    this.apiId = object.spec.APIID ?? "";
    this.orgId = object.spec.OrgID ?? "";
    this.session = object.session;
    this.metadata = object.metadata;
    this.#budget = budget;
    this.#config = config;
  }

  get config(): unknown {
    return this.#config.value(this.object.spec.config_data);
  }

  get signal(): AbortSignal {
    return this.#budget.signal;
  }

  get trace(): TraceContext | undefined {
    return currentTrace();
  }
}
