import type { StandardSchemaV1 } from "@standard-schema/spec";
import { HookType } from "../../gen/coprocess_common_pb.js";
import type { Logger } from "../observability/logger.js";
import { ConfigData } from "./config-data.js";
import type { AuthHook, EventHandler, HookSet, Plugin, RequestHook, ResponseHook } from "./plugin.js";

/** The plugin fields that hold hooks, one per hook type the gateway sends. */
export type HookKind = "pre" | "postKeyAuth" | "post" | "auth" | "response";

/** Which hook kind serves each hook type. */
export const hookKinds: ReadonlyMap<HookType, HookKind> = new Map([
  [HookType.Pre, "pre"],
  [HookType.PostKeyAuth, "postKeyAuth"],
  [HookType.Post, "post"],
  [HookType.CustomKeyCheck, "auth"],
  [HookType.Response, "response"],
]);

/** A hook with where it came from, as the registry holds it. */
export type RegisteredHook = (
  | { readonly kind: "pre" | "postKeyAuth" | "post"; readonly hook: RequestHook<unknown> }
  | { readonly kind: "auth"; readonly hook: AuthHook<unknown> }
  | { readonly kind: "response"; readonly hook: ResponseHook<unknown> }
) & {
  /** The name it was registered under: a hook name, or "*" for the catch-all. */
  readonly name: string;
  /** The API it serves only, or undefined for a global hook. */
  readonly apiId: string | undefined;
  readonly plugin: string;
  readonly logger: Logger;
  /** Fail open: a throw or timeout lets the request go on as the gateway sent it. */
  readonly failOpen: boolean;
  /** The API's config_data as this hook's plugin reads it (with its schema, if it declared one). */
  readonly config: ConfigData;
};

/** An event handler with the plugin it came from. */
export interface RegisteredHandler {
  readonly handler: EventHandler;
  readonly plugin: string;
  readonly logger: Logger;
}

/** A plugin as loaded, for the registry. */
interface LoadedPlugin {
  readonly name: string;
  readonly plugin: Plugin<never>;
  readonly config: ConfigData;
}

type ByName = Map<string, RegisteredHook>;

/**
 * Hooks by hook type and name (globally and per API), and event handlers by
 * handler name, from all loaded plugins. Two plugins claiming the same name
 * is a start-up error. A reload builds a new registry; the old one is
 * retired once the calls in flight on it have ended.
 */
export class PluginRegistry {
  readonly #hooks = new Map<HookKind, ByName>();
  readonly #apiHooks = new Map<string, Map<HookKind, ByName>>();
  readonly #handlers = new Map<string, RegisteredHandler>();
  readonly #plugins: LoadedPlugin[] = [];
  readonly #onRetire: (() => void)[] = [];
  #inFlight = 0;
  #retired: (() => void) | undefined;

  /** Adds every hook and event handler of a plugin; `configSchema` checks config_data for its hooks. */
  add(name: string, plugin: Plugin<never>, logger: Logger, configSchema?: StandardSchemaV1): void {
    const loaded: LoadedPlugin = { name, plugin, config: new ConfigData(name, configSchema, logger.child({ plugin: name })) };
    this.#addHooks(this.#hooks, loaded, plugin, undefined, logger);
    for (const [apiId, hooks] of Object.entries(plugin.apis ?? {})) {
      const forApi = this.#apiHooks.get(apiId) ?? new Map<HookKind, ByName>();
      this.#apiHooks.set(apiId, forApi);
      this.#addHooks(forApi, loaded, hooks, apiId, logger);
    }
    for (const [handlerName, handler] of Object.entries(plugin.events ?? {})) {
      const taken = this.#handlers.get(handlerName);
      if (taken) {
        throw new Error(`plugins "${taken.plugin}" and "${name}" both handle the event handler "${handlerName}"`);
      }
      if (typeof handler !== "function") {
        throw new Error(`plugin "${name}": the event handler "${handlerName}" is not a function`);
      }
      this.#handlers.set(handlerName, { handler, plugin: name, logger: logger.child({ plugin: name, eventHandler: handlerName }) });
    }
    this.#plugins.push(loaded);
  }

  #addHooks(into: Map<HookKind, ByName>, loaded: LoadedPlugin, hooks: HookSet<never>, apiId: string | undefined, logger: Logger): void {
    const where = apiId === undefined ? "" : ` of API "${apiId}"`;
    for (const kind of hookKinds.values()) {
      for (const [hookName, entry] of Object.entries(hooks[kind] ?? {})) {
        const hook = typeof entry === "function" ? entry : (entry as { run?: unknown }).run;
        const onFailure = typeof entry === "function" ? "closed" : ((entry as { onFailure?: string }).onFailure ?? "closed");
        if (typeof hook !== "function") {
          throw new Error(`plugin "${loaded.name}": the ${kind} hook "${hookName}"${where} is neither a function nor { run: function }`);
        }
        if (onFailure !== "closed" && onFailure !== "open") {
          throw new Error(`plugin "${loaded.name}": the ${kind} hook "${hookName}"${where} has onFailure "${onFailure}" (use "closed" or "open")`);
        }
        if (kind === "auth" && onFailure === "open") {
          throw new Error(`plugin "${loaded.name}": the auth hook "${hookName}"${where} cannot fail open: a failed auth hook has no session to go on with`);
        }
        const byName = into.get(kind) ?? new Map<string, RegisteredHook>();
        into.set(kind, byName);
        const taken = byName.get(hookName);
        if (taken) {
          throw new Error(`plugins "${taken.plugin}" and "${loaded.name}" both define the ${kind} hook "${hookName}"${where}`);
        }
        const hookLogger = logger.child(apiId === undefined ? { plugin: loaded.name, hook: hookName } : { plugin: loaded.name, hook: hookName, apiId });
        byName.set(hookName, {
          kind,
          hook,
          name: hookName,
          apiId,
          plugin: loaded.name,
          logger: hookLogger,
          failOpen: onFailure === "open",
          config: loaded.config,
        } as RegisteredHook);
      }
    }
  }

  /**
   * The hook for a call, most specific first: this API's hook of that name,
   * the global one of that name, this API's "*", the global "*".
   */
  find(hookType: HookType, hookName: string, apiId: string | undefined): RegisteredHook | undefined {
    const kind = hookKinds.get(hookType);
    if (kind === undefined) {
      return undefined;
    }
    const global = this.#hooks.get(kind);
    // (Most servers have no per-API hooks: one map lookup less per call.)
    const forApi = this.#apiHooks.size === 0 || apiId === undefined ? undefined : this.#apiHooks.get(apiId)?.get(kind);
    return forApi?.get(hookName) ?? global?.get(hookName) ?? forApi?.get("*") ?? global?.get("*");
  }

  /** The event handler registered under `handler_name`. */
  handler(handlerName: string): RegisteredHandler | undefined {
    return this.#handlers.get(handlerName);
  }

  /** Whether `hookName` is served for a hook kind globally (exactly, not via "*"). */
  has(kind: HookKind, hookName: string): boolean {
    return this.#hooks.get(kind)?.has(hookName) ?? false;
  }

  /** Plugins, hook names per kind (and per API) and event handler names, for the start-up log. */
  describe(): { plugins: string[]; hooks: Record<string, string[]>; apis?: Record<string, Record<string, string[]>>; eventHandlers: string[] } {
    const names = (byKind: Map<HookKind, ByName>) => Object.fromEntries([...byKind].map(([kind, byName]) => [kind, [...byName.keys()]]));
    const described = { plugins: this.#plugins.map((p) => p.name), hooks: names(this.#hooks), eventHandlers: [...this.#handlers.keys()] };
    return this.#apiHooks.size === 0 ? described : { ...described, apis: Object.fromEntries([...this.#apiHooks].map(([id, byKind]) => [id, names(byKind)])) };
  }

  /** Counts a call that may outlive a swap (an asynchronous hook, an event handler); synchronous hooks cannot. */
  enter(): void {
    this.#inFlight++;
  }

  /** Ends what enter() counted. */
  leave(): void {
    if (--this.#inFlight === 0 && this.#retired !== undefined) {
      this.#retired();
    }
  }

  /** Runs `cleanup` when this registry is retired, after its plugins are closed. */
  onRetire(cleanup: () => void): void {
    this.#onRetire.push(cleanup);
  }

  /**
   * Waits for the calls in flight on these plugins to end, then closes each
   * plugin (a failing close is logged, the others still run).
   */
  async retire(logger: Logger): Promise<void> {
    if (this.#inFlight > 0) {
      await new Promise<void>((resolve) => {
        this.#retired = resolve;
      });
    }
    for (const { name, plugin } of this.#plugins) {
      try {
        await plugin.close?.();
      } catch (e) {
        logger.error({ plugin: name, err: e }, "plugin close failed");
      }
    }
    this.#onRetire.forEach((cleanup) => cleanup());
  }
}
