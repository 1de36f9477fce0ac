import { createRouterTransport } from "@connectrpc/connect";
import { createHealthStatus, routes } from "../../src/app/routes.js";
import type { Logger } from "../../src/observability/logger.js";
import type { Plugin } from "../../src/tyk/plugin.js";
import { PluginHost } from "../../src/tyk/plugin-host.js";
import { PluginRegistry } from "../../src/tyk/registry.js";
import { MemoryUserStore } from "../../src/users/memory-user-store.js";
import { silentLogger } from "./loggers.js";

/**
 * All routes behind an in-memory Connect transport (no sockets), with the
 * given plugins registered under their keys, a fresh user store, and a
 * silent logger unless one is given.
 */
export function inMemoryServer(plugins: Record<string, Plugin> = {}, options: { logger?: Logger; pluginTimeoutMs?: number } = {}) {
  const logger = options.logger ?? silentLogger();
  const registry = new PluginRegistry();
  for (const [name, plugin] of Object.entries(plugins)) {
    registry.add(name, plugin, logger);
  }
  const host = new PluginHost(registry, { logger, timeoutMs: options.pluginTimeoutMs ?? 5000 });
  const userStore = new MemoryUserStore();
  const transport = createRouterTransport(routes({ logger, health: createHealthStatus(), userStore, plugins: host }));
  return { transport, userStore };
}
