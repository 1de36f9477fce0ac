import cluster from "node:cluster";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createClient, createRouterTransport, type ServiceImplSpec } from "@connectrpc/connect";
import { Users } from "../../gen/users_pb.js";
import type { Config } from "../config/config.js";
import type { LogTap } from "../observability/log-tap.js";
import type { Logger } from "../observability/logger.js";
import { createMetrics, type ServerMetrics } from "../observability/metrics.js";
import { registerServices } from "../rpc/register-services.js";
import { createRpcHandlers } from "../rpc/rpc-handlers.js";
import type { HealthStatus } from "../services/health/health-status.js";
import { createHttpApi } from "../services/http-api.js";
import { CallRecorder } from "../services/inspector/call-recorder.js";
import { createInspectorRoutes, type InspectorRoutes } from "../services/inspector/inspector-routes.js";
import { formatListenAddress, type ListenAddress, localDialAddress } from "../transport/listen-address.js";
import { type ConnectionFacts, type RunningServer, startServer } from "../transport/start-server.js";
import { loadPlugins, pluginFiles } from "../tyk/load-plugins.js";
import { PluginHost } from "../tyk/plugin-host.js";
import type { PluginRegistry } from "../tyk/registry.js";
import { openUserStore } from "../users/open-user-store.js";
import type { UserStore } from "../users/user-store.js";
import { callPipeline } from "./pipeline.js";
import { watchPluginFiles } from "./plugin-watch.js";
import { createHealthStatus, servedServices, services } from "./routes.js";

/** What createApp builds the server from. */
export interface AppOptions {
  readonly config: Config;
  readonly logger: Logger;
  /** Plugins already registered (tests); by default the config's plugins are loaded. */
  readonly registry?: PluginRegistry;
  /** A Users store of the caller's (tests); by default the config's is opened, and closed by `stop`. */
  readonly userStore?: UserStore;
  /** Implementations served instead of the built-in ones of the same services (tests: probes and failing fakes). */
  readonly replaceServices?: readonly ServiceImplSpec[];
  /** Where the call inspector (--inspect) reads each call's log lines: the tap `logger` writes through. */
  readonly logTap?: LogTap;
}

/** Why createApp failed (its message: the step; its cause: the error). */
export class AppStartError extends Error {
  override readonly name = "AppStartError";
}

const failed =
  (step: string) =>
  (cause: unknown): never => {
    throw new AppStartError(step, { cause });
  };

/** A server built from a config, listening. */
export interface App {
  readonly server: RunningServer;
  readonly health: HealthStatus;
  readonly userStore: UserStore;
  /** The plugins new calls run on. */
  readonly registry: PluginRegistry;
  readonly metrics: ServerMetrics | undefined;
  /**
   * Loads the plugins again (fresh modules) and makes new calls use them;
   * calls in flight finish on the old ones, which are then closed. The
   * connections stay open. On failure the old plugins stay, and the error
   * is logged and returned.
   */
  reloadPlugins(): Promise<{ ok: true; generation: number } | { ok: false; error: Error }>;
  /**
   * Reports NOT_SERVING, drains (see transport/drain.ts), then closes the
   * Users store it opened: after the last call, so that none is cut off.
   */
  stop(graceMs: number): Promise<{ forced: boolean }>;
}

/**
 * Builds the whole server from a config and starts listening: plugins,
 * metrics, the Users store, every service behind one interceptor pipeline,
 * the RPC handlers (fast path and connect), the plain HTTP routes, and the
 * transport. The process (main.ts) and the tests build it the same way.
 * Rejects with an AppStartError naming the step that failed.
 */
export async function createApp(options: AppOptions): Promise<App> {
  const { config, logger } = options;
  const registry = options.registry ?? (await loadPlugins(config.plugins, config.pluginOptions, logger).catch(failed("cannot load plugins")));
  logger.info(registry.describe(), "plugins loaded");
  // Under --workers each worker counts its own calls, labelled with its id.
  const metrics = config.metrics ? createMetrics(cluster.isWorker ? { worker: String(cluster.worker!.id) } : {}) : undefined;
  const recorder =
    config.inspector === undefined
      ? undefined
      : new CallRecorder({ capacity: config.inspector.calls, logSecrets: config.logSecrets, logger, ...(options.logTap && { logTap: options.logTap }) });
  const plugins = new PluginHost(registry, {
    logger,
    timeoutMs: config.pluginTimeoutMs,
    onHookDone: metrics?.hookDone,
    ...(recorder && { observer: recorder }),
  });
  const reloadPlugins = pluginReloader(config, logger, plugins);
  const stopWatching = config.watchPlugins ? watchPluginFiles(pluginFiles(config.plugins), () => void reloadPlugins(), logger) : undefined;
  const health = createHealthStatus();
  const ownStore = options.userStore === undefined ? openUserStore(config.users, logger) : undefined;
  const userStore = options.userStore ?? ownStore!;
  if (ownStore !== undefined && config.users.open === "start") {
    await ownStore.ready().catch(failed("cannot open the users store (--users-store-open start)"));
  }
  const builtIn = services({ logger, health, userStore, plugins, logSecrets: config.logSecrets, logObjects: config.logObjects });
  const replaced = new Map((options.replaceServices ?? []).map((s) => [s.service.typeName, s]));
  const served = builtIn.map((s) => replaced.get(s.service.typeName) ?? s);
  const pipeline = callPipeline(logger, metrics);
  let inspector: InspectorRoutes | undefined;
  // The plain HTTP routes: the inspector's (--inspect) first, then /healthz, /metrics, GET /users...
  const httpRoutes = (facts: ConnectionFacts) => {
    const api = createHttpApi({
      health,
      metrics: metrics?.registry,
      // GET /users calls the same implementation through the same interceptors.
      users: createClient(Users, createRouterTransport(registerServices(served), { router: { interceptors: [...pipeline.all] } })),
      logger,
      repeats: facts.repeats,
      peerOf: facts.peerOf,
    });
    if (recorder === undefined) return api;
    const routes = createInspectorRoutes({
      recorder,
      token: config.inspector?.token,
      logger,
      repeats: facts.repeats,
      // Within --idle-timeout, which closes a connection that carried no bytes for that long.
      heartbeatMs: Math.min(15_000, config.limits.idleTimeoutMs > 0 ? config.limits.idleTimeoutMs / 2 : 15_000),
    });
    inspector = routes;
    return (req: IncomingMessage, res: ServerResponse) => routes.handle(req, res) || api(req, res);
  };
  const server = await startServer({
    listen: config.listen,
    tlsListen: config.tlsListen,
    tls: config.tls,
    httpListen: config.httpListen,
    limits: config.limits,
    logger,
    acceptEmptyAuthority: config.acceptEmptyAuthority,
    // Under --workers the primary has prepared the socket files.
    socketFiles: { prepare: !cluster.isWorker, group: config.unixSocketGroup },
    handlers: (facts) => ({
      ...createRpcHandlers(
        {
          services: served,
          unaryInterceptors: pipeline.unary,
          interceptors: pipeline.all,
          logger,
          maxMessageBytes: config.maxMessageBytes,
          fastPath: config.fastPath,
        },
        facts,
      ),
      httpRoute: config.httpListen.length > 0 ? httpRoutes(facts) : undefined,
    }),
  }).catch(failed("cannot listen"));
  if (recorder !== undefined) {
    recorder.target = { plaintext: server.addresses, tls: server.tlsAddresses };
  }
  logger.info(
    {
      addresses: server.addresses.map(formatListenAddress),
      tlsAddresses: server.tlsAddresses.map(formatListenAddress),
      httpAddresses: server.httpAddresses.map(formatListenAddress),
      services: servedServices.map((s) => s.typeName),
      ...(recorder && { inspector: server.httpAddresses.map(inspectorUrl) }),
      // The process to signal: under --workers, the primary (this worker's parent).
      pid: cluster.isWorker ? process.ppid : process.pid,
      ...(cluster.isWorker && { workerPid: process.pid }),
    },
    "server listening",
  );
  return {
    server,
    health,
    userStore,
    get registry() {
      return plugins.registry;
    },
    metrics,
    reloadPlugins,
    async stop(graceMs) {
      stopWatching?.();
      health.shutdown();
      // Event streams never end by themselves: the drain would wait for them.
      inspector?.close();
      const result = await server.drain(graceMs);
      await plugins.registry.retire(logger);
      // After the last call: the embedded stores write their last pages and free the directory.
      await ownStore?.close().catch((err: unknown) => logger.error({ err }, "closing the users store failed"));
      return result;
    },
  };
}

// Reloads one at a time. Changes made while one runs get one reload more,
// however many there were: each reload keeps its modules in memory (Node
// cannot unload them), so a burst of SIGHUPs must not queue a reload each.
function pluginReloader(config: Config, logger: Logger, plugins: PluginHost): App["reloadPlugins"] {
  let generation = 0;
  // Each attempt imports under a name of its own: Node remembers a module that failed to load.
  let attempts = 0;
  let running: Promise<unknown> = Promise.resolve();
  let queued: ReturnType<App["reloadPlugins"]> | undefined;
  const reload = async () => {
    queued = undefined;
    const started = Date.now();
    try {
      const registry = await loadPlugins(config.plugins, config.pluginOptions, logger, { attempt: ++attempts });
      generation++;
      const old = plugins.replace(registry);
      logger.info({ ...registry.describe(), generation, ms: Date.now() - started }, "plugins reloaded");
      void old.retire(logger);
      return { ok: true as const, generation };
    } catch (e) {
      const error = e instanceof Error ? e : new Error(String(e));
      logger.error({ err: error }, "plugin reload failed: the old plugins stay");
      return { ok: false as const, error };
    }
  };
  return () => {
    queued ??= running.then(reload);
    running = queued;
    return queued;
  };
}

// Where a person opens the inspector served on an HTTP listener.
function inspectorUrl(address: ListenAddress): string {
  return address.kind === "unix" ? `unix://${address.path} /inspect` : `http://${localDialAddress(address)}/inspect`;
}
