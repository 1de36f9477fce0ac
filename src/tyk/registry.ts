import { HookType } from "../../gen/coprocess_common_pb.js";
import type { Logger } from "../observability/logger.js";
import type { AuthHook, EventHandler, Plugin, RequestHook, ResponseHook } from "./plugin.js";

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
  | { readonly kind: "pre" | "postKeyAuth" | "post"; readonly hook: RequestHook }
  | { readonly kind: "auth"; readonly hook: AuthHook }
  | { readonly kind: "response"; readonly hook: ResponseHook }
) & {
  /** The name it was registered under: a hook name, or "*" for the catch-all. */
  readonly name: string;
  readonly plugin: string;
  readonly logger: Logger;
};

/** An event handler with the plugin it came from. */
export interface RegisteredHandler {
  readonly handler: EventHandler;
  readonly plugin: string;
  readonly logger: Logger;
}

/**
 * Hooks by hook type and name, and event handlers by handler name, from all
 * loaded plugins. Two plugins claiming the same name is a start-up error.
 */
export class PluginRegistry {
  readonly #hooks = new Map<HookKind, Map<string, RegisteredHook>>();
  readonly #handlers = new Map<string, RegisteredHandler>();
  readonly #plugins: string[] = [];

  /** Adds every hook and event handler of a plugin. */
  add(name: string, plugin: Plugin, logger: Logger): void {
    this.#plugins.push(name);
    for (const kind of hookKinds.values()) {
      for (const [hookName, hook] of Object.entries(plugin[kind] ?? {})) {
        const byName = this.#hooks.get(kind) ?? new Map<string, RegisteredHook>();
        this.#hooks.set(kind, byName);
        const taken = byName.get(hookName);
        if (taken) {
          throw new Error(`plugins "${taken.plugin}" and "${name}" both define the ${kind} hook "${hookName}"`);
        }
        const hookLogger = logger.child({ plugin: name, hook: hookName });
        byName.set(hookName, { kind, hook, name: hookName, plugin: name, logger: hookLogger } as RegisteredHook);
      }
    }
    for (const [handlerName, handler] of Object.entries(plugin.events ?? {})) {
      const taken = this.#handlers.get(handlerName);
      if (taken) {
        throw new Error(`plugins "${taken.plugin}" and "${name}" both handle the event handler "${handlerName}"`);
      }
      this.#handlers.set(handlerName, { handler, plugin: name, logger: logger.child({ plugin: name, eventHandler: handlerName }) });
    }
  }

  /** The hook for a call: by exact name, else the "*" hook of that type. */
  find(hookType: HookType, hookName: string): RegisteredHook | undefined {
    const kind = hookKinds.get(hookType);
    const byName = kind && this.#hooks.get(kind);
    return byName?.get(hookName) ?? byName?.get("*");
  }

  /** The event handler registered under `handler_name`. */
  handler(handlerName: string): RegisteredHandler | undefined {
    return this.#handlers.get(handlerName);
  }

  /** Whether `hookName` is served for a hook kind (exactly, not via "*"). */
  has(kind: HookKind, hookName: string): boolean {
    return this.#hooks.get(kind)?.has(hookName) ?? false;
  }

  /** Plugins, hook names per kind and event handler names, for the start-up log. */
  describe(): { plugins: string[]; hooks: Record<string, string[]>; eventHandlers: string[] } {
    const hooks: Record<string, string[]> = {};
    for (const [kind, byName] of this.#hooks) {
      hooks[kind] = [...byName.keys()];
    }
    return { plugins: [...this.#plugins], hooks, eventHandlers: [...this.#handlers.keys()] };
  }
}
