import { readdirSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Logger } from "../observability/logger.js";
import type { PluginFactory } from "./plugin.js";
import { PluginRegistry } from "./registry.js";

// Plugins live in src/plugins/ (compiled to dist/src/plugins/) and are named
// by file name; anything that looks like a path is imported from there instead.
const pluginDir = new URL("../plugins/", import.meta.url);
const bareName = /^[a-z0-9][a-z0-9-]*$/;

/** The plugin names found in src/plugins/. */
export function builtInPlugins(): string[] {
  return readdirSync(fileURLToPath(pluginDir))
    .filter((f) => f.endsWith(".js"))
    .map((f) => f.slice(0, -3))
    .sort();
}

/**
 * Imports each plugin module (a name from src/plugins/, or a path to a
 * compiled module), calls its factory with its options, and registers its
 * hooks. Throws with a clear message for a missing module, a module without
 * a plugin factory, or two plugins claiming the same hook.
 */
export async function loadPlugins(specs: readonly string[], options: Readonly<Record<string, unknown>>, logger: Logger): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  for (const spec of specs) {
    const isName = bareName.test(spec);
    const url = isName ? new URL(`${spec}.js`, pluginDir) : pathToFileURL(resolve(spec));
    let module: { default?: unknown };
    try {
      module = (await import(url.href)) as { default?: unknown };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ERR_MODULE_NOT_FOUND" && String((e as Error).message).includes(fileURLToPath(url))) {
        const known = isName ? ` (built-in plugins: ${builtInPlugins().join(", ")})` : "";
        throw new Error(`unknown plugin "${spec}": no module at ${fileURLToPath(url)}${known}`);
      }
      throw new Error(`plugin "${spec}" failed to load: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
    const factory = module.default;
    if (typeof factory !== "function") {
      throw new Error(`plugin "${spec}" has no default export made with definePlugin(...)`);
    }
    const plugin = await (factory as PluginFactory)({ options: options[spec], logger: logger.child({ plugin: spec }) });
    registry.add(plugin.name ?? spec, plugin, logger);
  }
  return registry;
}
