import { create, type JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { HookType } from "../../gen/coprocess_common_pb.js";
import { MiniRequestObjectSchema } from "../../gen/coprocess_mini_request_object_pb.js";
import type { Object$ } from "../../gen/coprocess_object_pb.js";
import { ReturnOverridesSchema } from "../../gen/coprocess_return_overrides_pb.js";
import { SessionStateSchema } from "../../gen/coprocess_session_state_pb.js";
import type { Logger } from "../logger.js";
import { checkHeaderName, checkHeaderValue } from "./http-fields.js";
import type { AuthOutcome, OutcomeHeaders, RequestOutcome } from "./outcome.js";
import type { HookContext } from "./plugin.js";
import { parseTykEvent } from "./events.js";
import type { PluginRegistry, RegisteredHook } from "./registry.js";
import { TykRequest, TykRequestView } from "./request.js";
import { TykResponse } from "./response.js";
import { isPromiseLike, then } from "../maybe-promise.js";
import type { HookMetricOutcome } from "../metrics.js";
import { currentTrace, type TraceContext } from "../trace-context.js";

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
  readonly #registry: PluginRegistry;
  readonly #logger: Logger;
  readonly #timeoutMs: number;
  readonly #warned = new Set<string>();
  readonly #onHookDone: NonNullable<PluginHostOptions["onHookDone"]>;

  constructor(registry: PluginRegistry, options: PluginHostOptions) {
    this.#registry = registry;
    this.#logger = options.logger;
    this.#timeoutMs = options.timeoutMs;
    this.#onHookDone = options.onHookDone ?? (() => undefined);
  }

  /**
   * Handles one Dispatch call; throws a ConnectError when the plugin fails,
   * runs out of time, or the call ends first. `call.signal` (the gRPC call's)
   * is read only if the hook is asynchronous or reads its own signal:
   * creating signals costs more than most hooks.
   */
  async dispatch(object: Object$, call: CallSignal): Promise<Object$> {
    const found = this.#registry.find(object.hookType, object.hookName);
    const hookType = HookType[object.hookType] ?? String(object.hookType);
    if (found === undefined) {
      this.#warnUnknown(object);
      this.#onHookDone(hookType, object.hookName, "no_plugin");
      return object;
    }
    let outcome: HookOutcome;
    try {
      outcome = await this.#withBudget(found.plugin, `${found.kind} hook "${object.hookName}"`, call, (budget) =>
        runHook(found, object, new CallHookContext(object, found.logger, budget)),
      );
    } catch (e) {
      this.#onHookDone(hookType, found.name, "error");
      throw e;
    }
    // Counted by the registered name ("*" for the catch-all): names the caller chose are unbounded.
    this.#onHookDone(hookType, found.name, found.kind === "auth" && outcome === "reject" ? "deny" : outcome);
    if (this.#logger.isLevelEnabled("debug")) {
      this.#logger.debug({ plugin: found.plugin, hookType: HookType[object.hookType], hookName: object.hookName, outcome }, "hook done");
    }
    return object;
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
    const found = this.#registry.handler(event.handlerName);
    if (found === undefined) {
      this.#logger.warn({ handlerName: event.handlerName, eventType: event.type }, "no event handler registered under this name");
      return;
    }
    try {
      await this.#withBudget(found.plugin, `event handler "${event.handlerName}"`, call, (budget) =>
        found.handler(event, {
          logger: found.logger,
          get signal() {
            return budget();
          },
        }),
      );
    } catch {
      // #withBudget logged it; the reply to the gateway stays EventReply{}.
    }
  }

  // Runs fn with a (lazily made) AbortSignal that fires at the time budget
  // or when the call is cancelled; turns failures into logged ConnectErrors.
  // A hook that returns synchronously cannot overrun its budget (it held the
  // event loop all along), so only a returned promise is raced against it.
  async #withBudget<T>(plugin: string, what: string, call: CallSignal, fn: (signal: () => AbortSignal) => T | Promise<T>): Promise<T> {
    let budget: AbortController | undefined;
    let expired: ConnectError | undefined;
    const onCallAbort = () => budget!.abort(call.signal.reason);
    const signal = () => {
      if (budget === undefined) {
        budget = new AbortController();
        if (expired !== undefined) {
          budget.abort(expired);
        } else if (call.signal.aborted) {
          budget.abort(call.signal.reason);
        } else {
          call.signal.addEventListener("abort", onCallAbort, { once: true });
        }
      }
      return budget.signal;
    };
    let timer: NodeJS.Timeout | undefined;
    let onCallEnd: (() => void) | undefined;
    try {
      const result = fn(signal);
      if (!isPromiseLike(result)) {
        return result;
      }
      // The hook is abandoned at its budget, or when the call ends first
      // (deadline, cancellation, shutdown): nobody waits for its answer then.
      const abandoned = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          expired = new ConnectError(`plugin "${plugin}" exceeded its ${this.#timeoutMs} ms budget in ${what}`, Code.DeadlineExceeded);
          budget?.abort(expired);
          reject(expired);
        }, this.#timeoutMs);
        const callSignal = call.signal;
        onCallEnd = () => reject(callSignal.reason);
        if (callSignal.aborted) {
          onCallEnd();
        } else {
          callSignal.addEventListener("abort", onCallEnd, { once: true });
        }
      });
      return await Promise.race([result, abandoned]);
    } catch (e) {
      if (e !== undefined && e === expired) {
        this.#logger.error({ plugin, what, timeoutMs: this.#timeoutMs }, "plugin timed out");
        throw e;
      }
      if (call.signal.aborted && e === call.signal.reason) {
        this.#logger.warn({ plugin, what, reason: ConnectError.from(e).message }, "the call ended while the plugin ran: abandoned");
        throw ConnectError.from(e);
      }
      this.#logger.error({ plugin, what, err: e }, "plugin failed");
      throw new ConnectError(`plugin "${plugin}" failed in ${what}`, Code.Internal, undefined, undefined, e);
    } finally {
      clearTimeout(timer);
      if (onCallEnd !== undefined) {
        call.signal.removeEventListener("abort", onCallEnd);
      }
      if (budget !== undefined) {
        call.signal.removeEventListener("abort", onCallAbort);
      }
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

// Hook names are the caller's to choose: remembering every unknown one
// would let a caller grow the server's memory without bound.
const maxWarnedHooks = 1000;

// Synchronous when the hook is (most are): no promise, no timer.
function runHook(found: RegisteredHook, object: Object$, ctx: HookContext): HookOutcome | Promise<HookOutcome> {
  // The gateway always sends these; a hand-made Object may not, and the
  // gateway would crash on a reply without them.
  object.request ??= create(MiniRequestObjectSchema);
  object.request.returnOverrides ??= create(ReturnOverridesSchema, { responseCode: -1 });
  switch (found.kind) {
    case "pre":
    case "postKeyAuth":
    case "post":
      return then(found.hook(new TykRequest(object.request), ctx), (outcome) => applyRequestOutcome(object, outcome));
    case "auth":
      return then(found.hook(new TykRequest(object.request), ctx), (outcome) => applyAuthOutcome(object, outcome));
    case "response":
      if (object.response === undefined) {
        throw new ConnectError("Response hook called without a response object", Code.InvalidArgument);
      }
      return then(found.hook(new TykResponse(object.response, new TykRequestView(object.request)), ctx), () => "continue" as const);
  }
}

function applyRequestOutcome(object: Object$, outcome: RequestOutcome | void): HookOutcome {
  if (outcome === undefined) {
    return "continue";
  }
  const ro = object.request!.returnOverrides!;
  const headers = checkedHeaders(outcome.headers);
  switch (outcome.kind) {
    case "reject":
      checkStatus(outcome.status, 400, "reject()");
      // The gateway copies response_error into response_body and renders its error template.
      Object.assign(ro, { responseCode: outcome.status, responseError: outcome.message, responseBody: outcome.message, overrideError: false, headers });
      return "reject";
    case "respond":
      checkStatus(outcome.status, 100, "respond()");
      // override_error makes a >= 400 answer carry the body verbatim instead of the error template.
      Object.assign(ro, { responseCode: outcome.status, responseError: "", responseBody: outcome.body, overrideError: outcome.status >= 400, headers });
      return "respond";
    default:
      throw new TypeError(`a request hook returned an unknown outcome: ${JSON.stringify(outcome)}`);
  }
}

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
  session.metadata["token"] = outcome.token;
  if (outcome.ttlSeconds !== undefined) {
    if (!(outcome.ttlSeconds > 0)) {
      throw new TypeError(`allow() ttlSeconds must be positive, got ${outcome.ttlSeconds}`);
    }
    // The gateway compares id_extractor_deadline with the time in Unix seconds.
    session.idExtractorDeadline = BigInt(Math.floor(Date.now() / 1000) + Math.ceil(outcome.ttlSeconds));
  }
  object.session = session;
  object.metadata["token"] = outcome.token;
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
class CallHookContext implements HookContext {
  readonly hookType: HookType;
  readonly hookName: string;
  readonly apiId: string;
  readonly orgId: string;
  readonly session: Object$["session"];
  readonly metadata: Object$["metadata"];
  readonly #signal: () => AbortSignal;
  #config: JsonValue | undefined | null = null;

  constructor(
    readonly object: Object$,
    readonly logger: Logger,
    signal: () => AbortSignal,
  ) {
    this.hookType = object.hookType;
    this.hookName = object.hookName;
    this.apiId = object.spec["APIID"] ?? "";
    this.orgId = object.spec["OrgID"] ?? "";
    this.session = object.session;
    this.metadata = object.metadata;
    this.#signal = signal;
  }

  get config(): JsonValue | undefined {
    if (this.#config === null) {
      const raw = this.object.spec["config_data"];
      try {
        this.#config = raw ? (JSON.parse(raw) as JsonValue) : undefined;
      } catch {
        this.logger.warn("config_data is not valid JSON: ignoring it");
        this.#config = undefined;
      }
    }
    return this.#config;
  }

  get signal(): AbortSignal {
    return this.#signal();
  }

  get trace(): TraceContext | undefined {
    return currentTrace();
  }
}
