import cluster from "node:cluster";
import { constants } from "node:os";
import { drainMessage, reloadMessage, runPrimary } from "./app/cluster.js";
import { parseConfig, usage, type Config } from "./config/config.js";
import { formatListenAddress } from "./transport/listen-address.js";
import { createLogger } from "./observability/logger.js";
import { createMetrics } from "./observability/metrics.js";
import { createHealthStatus, servedServices, services } from "./app/routes.js";
import { startServer } from "./transport/start-server.js";
import { prepareSocketPath, removeSocketFiles } from "./transport/unix-socket.js";
import { objectLogThread } from "./tyk/object-log.js";
import { loadPlugins } from "./tyk/load-plugins.js";
import { PluginHost } from "./tyk/plugin-host.js";
import { openUserStore } from "./users/open-user-store.js";
import { watchParent } from "./app/parent-watch.js";

// The server process: configuration, logging, serving, and signal handling.

let config;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\nRun with --help for the options.\n`);
  process.exit(2);
}
if (config === undefined) {
  process.stdout.write(usage);
  process.exit(0);
}

// Under --workers, every line says which worker wrote it.
const rootLogger = createLogger({ level: config.logLevel, format: config.logFormat, thread: objectLogThread });
const logger = cluster.isWorker ? rootLogger.child({ worker: cluster.worker!.id }) : rootLogger;

// Nothing may take the process down silently: say why, then exit non-zero.
process.on("uncaughtException", (err) => {
  logger.fatal({ err }, "uncaught exception: exiting");
  process.exit(1);
});
process.on("unhandledRejection", (reason) => {
  logger.fatal({ err: reason }, "unhandled promise rejection: exiting");
  process.exit(1);
});

// A clean drain closes the listeners, which removes their socket files; any
// other exit (second signal, fatal error) must not leave them behind. Only
// files this process made its own are removed; under --workers, the primary's.
const socketPaths = [...config.listen, ...config.tlsListen, ...config.httpListen].flatMap((a) => (a.kind === "unix" ? [a.path] : []));
const removeOwnSocketFilesAtExit = () => process.on("exit", () => removeSocketFiles(socketPaths));

if (cluster.isPrimary && config.workers > 1) {
  // Stale socket files are cleared once, here: workers share the listeners.
  for (const path of socketPaths) {
    await prepareSocketPath(path, logger).catch((err: unknown) => {
      logger.fatal({ err }, "cannot listen");
      process.exit(1);
    });
  }
  removeOwnSocketFilesAtExit();
  runPrimary({ workers: config.workers, logger, gracePeriodMs: config.gracePeriodMs });
} else {
  await serve(config);
}

// One server in this process (the only one, or one of --workers).
async function serve(config: Config): Promise<void> {
  const registry = await loadPlugins(config.plugins, config.pluginOptions, logger).catch((err: unknown) => {
    logger.fatal({ err }, "cannot load plugins");
    process.exit(1);
  });
  logger.info(registry.describe(), "plugins loaded");
  // Under --workers each worker counts its own calls, labelled with its id.
  const metrics = config.metrics ? createMetrics(cluster.isWorker ? { worker: String(cluster.worker!.id) } : {}) : undefined;
  const plugins = new PluginHost(registry, { logger, timeoutMs: config.pluginTimeoutMs, onHookDone: metrics?.hookDone });

  const health = createHealthStatus();
  const userStore = openUserStore(config.users, logger);
  if (config.users.open === "start") {
    await userStore.ready().catch(() => {
      logger.fatal("cannot open the users store (--users-store-open start)");
      process.exit(1);
    });
  }
  const server = await startServer({
    listen: config.listen,
    tlsListen: config.tlsListen,
    tls: config.tls,
    httpListen: config.httpListen,
    health,
    metrics,
    limits: config.limits,
    logger,
    maxMessageBytes: config.maxMessageBytes,
    acceptEmptyAuthority: config.acceptEmptyAuthority,
    fastPath: config.fastPath,
    // Under --workers the primary has prepared the socket files.
    prepareUnixSockets: !cluster.isWorker,
    unixSocketGroup: config.unixSocketGroup,
    services: services({ logger, health, userStore, plugins, logSecrets: config.logSecrets, logObjects: config.logObjects }),
  }).catch((err: unknown) => {
    logger.fatal({ err }, "cannot listen");
    process.exit(1);
  });
  if (!cluster.isWorker) {
    removeOwnSocketFilesAtExit();
  }

  logger.info(
    {
      addresses: server.addresses.map(formatListenAddress),
      tlsAddresses: server.tlsAddresses.map(formatListenAddress),
      httpAddresses: server.httpAddresses.map(formatListenAddress),
      services: servedServices.map((s) => s.typeName),
      // The process to signal: under --workers, the primary (this worker's parent).
      pid: cluster.isWorker ? process.ppid : process.pid,
      ...(cluster.isWorker && { workerPid: process.pid }),
    },
    "server listening",
  );

  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    logger.info({ signal, gracePeriodMs: config.gracePeriodMs }, "shutting down: draining in-flight calls");
    health.shutdown();
    server.drain(config.gracePeriodMs).then(
      async ({ forced }) => {
        // After the last call: PGlite writes its last pages and frees the directory.
        await userStore.close().catch((err: unknown) => logger.error({ err }, "closing the users store failed"));
        logger.info({ forced }, "server stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.fatal({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  // SIGHUP: new certificates for new connections; a bad file keeps the old ones.
  const reload = () => {
    try {
      const certificate = server.reloadTls();
      logger.info(certificate ?? {}, certificate ? "TLS certificate reloaded" : "SIGHUP: nothing to reload (no TLS listener)");
    } catch (err) {
      logger.error({ err }, "TLS reload failed: keeping the old certificate");
    }
  };
  if (cluster.isWorker) {
    // The primary decides (see cluster.ts); a Ctrl-C reaching the whole
    // process group must not count as a first and a second signal.
    process.on("SIGTERM", () => undefined);
    process.on("SIGINT", () => undefined);
    process.on("SIGHUP", () => undefined);
    process.on("message", (message) => {
      if (message === drainMessage) onSignal("SIGTERM");
      if (message === reloadMessage) reload();
    });
    // The primary is gone (killed): nobody will restart or stop us.
    process.on("disconnect", () => stopping || onSignal("SIGTERM"));
  } else {
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.on("SIGHUP", reload);
    watchParent(() => {
      logger.warn({ ppid: process.ppid }, "the package-manager script that started the server has exited");
      if (!stopping) onSignal("SIGTERM");
    });
  }
}
