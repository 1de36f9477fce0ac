import { type App, type AppOptions, createApp } from "../../src/app/create-app.js";
import { parseConfig } from "../../src/config/config.js";
import { PluginRegistry } from "../../src/tyk/registry.js";
import { MemoryUserStore } from "../../src/users/memory-user-store.js";
import { silentLogger } from "./loggers.js";

/** A server built by createApp in this process, and the URL of its first plaintext address. */
export interface TestApp extends App {
  readonly url: string;
}

/**
 * Starts the whole server in this process, as main.ts does (createApp),
 * from server flags `args` on top of a free port on 127.0.0.1 and a memory
 * store; with no plugins, a fresh MemoryUserStore and a silent logger
 * unless `options` gives others.
 */
export async function startApp(args: readonly string[] = [], options: Partial<Omit<AppOptions, "config">> = {}): Promise<TestApp> {
  const config = parseConfig(["--listen", "127.0.0.1:0", "--users-store", "memory", ...args], {})!;
  const app = await createApp({
    config,
    logger: options.logger ?? silentLogger(),
    registry: options.registry ?? new PluginRegistry(),
    userStore: options.userStore ?? new MemoryUserStore(),
    replaceServices: options.replaceServices ?? [],
    ...(options.logTap && { logTap: options.logTap }),
  });
  const address = app.server.addresses[0];
  // (Not a spread: that would copy the registry getter's value of now, not the getter.)
  return Object.assign(app, { url: address?.kind === "tcp" ? `http://127.0.0.1:${address.port}` : "" });
}
