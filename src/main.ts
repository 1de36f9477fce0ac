#!/usr/bin/env -S node --max-semi-space-size=8 --heap-growing-percent=100
// (The shebang is the package bin's: its node options are `pnpm serve`'s, and package managers' shims pass them on.)
import cluster from "node:cluster";
import { constants } from "node:os";
import { drainMessage, reloadMessage, runPrimary } from "./app/cluster.js";
import { type App, AppStartError, createApp } from "./app/create-app.js";
import { watchParent } from "./app/parent-watch.js";
import { type Config, parseConfig, usage } from "./config/config.js";
import { LogTap } from "./observability/log-tap.js";
import { createLogger } from "./observability/logger.js";
import { prepareSocketPath, removeSocketFiles } from "./transport/unix-socket.js";
import { objectLogThread } from "./tyk/object-log.js";

// The server process: configuration and signal handling. What it serves is
// built by createApp (app/create-app.ts).

let config: Config | undefined;
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
// The inspector (--inspect) reads each call's log lines through the tap.
const logTap = config.inspector === undefined ? undefined : new LogTap();
const rootLogger = createLogger({ level: config.logLevel, format: config.logFormat, thread: objectLogThread, ...(logTap && { tap: logTap }) });
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
  const app = await createApp({ config, logger, ...(logTap && { logTap }) }).catch((e: unknown) => {
    logger.fatal({ err: e instanceof AppStartError ? e.cause : e }, e instanceof AppStartError ? e.message : "cannot start");
    process.exit(1);
  });
  if (!cluster.isWorker) {
    removeOwnSocketFilesAtExit();
  }
  handleSignals(app, config.gracePeriodMs);
}

// The first SIGTERM/SIGINT drains, a second exits at once; SIGHUP reloads the
// TLS certificate and the plugins.
// Under --workers the primary relays them (see app/cluster.ts).
function handleSignals(app: App, gracePeriodMs: number): void {
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    logger.info({ signal, gracePeriodMs }, "shutting down: draining in-flight calls");
    app.stop(gracePeriodMs).then(
      ({ forced }) => {
        logger.info({ forced }, "server stopped");
        process.exit(0);
      },
      (err: unknown) => {
        logger.fatal({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  // SIGHUP: new certificates for new connections, new plugins for new calls;
  // a bad file keeps the old ones (each is logged).
  const reload = () => {
    try {
      const certificate = app.server.reloadTls();
      if (certificate) logger.info(certificate, "TLS certificate reloaded");
    } catch (err) {
      logger.error({ err }, "TLS reload failed: keeping the old certificate");
    }
    void app.reloadPlugins();
  };
  if (cluster.isWorker) {
    // The primary decides (see app/cluster.ts); a Ctrl-C reaching the whole
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
