import cluster, { type Worker } from "node:cluster";
import { constants } from "node:os";
import type { Logger } from "../observability/logger.js";
import { watchParent } from "./parent-watch.js";

/** What the primary sends a worker to make it drain and exit (as a first SIGTERM would). */
export const drainMessage = "tyk-grpc-ts:drain";

/** What the primary sends every worker on SIGHUP: re-read the TLS files. */
export const reloadMessage = "tyk-grpc-ts:reload-tls";

/** Settings of the primary process. */
export interface PrimaryOptions {
  readonly workers: number;
  readonly logger: Logger;
  /** The workers' drain time; a worker still running this long (plus a margin) after the drain is killed. */
  readonly gracePeriodMs: number;
}

// A worker that keeps dying is a bug or a broken environment, not bad luck:
// after this many restarts within a minute the primary gives up.
const maxRestartsPerMinute = 10;
// Time a worker gets beyond the grace period to log and exit on its own.
const exitMarginMs = 5000;

/**
 * The primary of `--workers N`: forks N copies of this process, which share
 * the listeners (node:cluster hands each new connection to the next worker
 * in turn), starts a new worker when one dies, and on SIGTERM/SIGINT tells
 * every worker to drain, then exits 0 once all have exited cleanly. A second
 * signal kills the workers and exits at once; SIGHUP is passed on as a
 * message to re-read the TLS files. Workers ignore the signals themselves (a terminal's Ctrl-C reaches the whole process group) and
 * drain on the primary's message instead.
 */
export function runPrimary(options: PrimaryOptions): void {
  const { logger } = options;
  const restarts: number[] = [];
  const listening = new WeakSet<Worker>();
  let stopping = false;
  let failed = false;

  const workers = () => Object.values(cluster.workers ?? {}).filter((w): w is Worker => w !== undefined);
  cluster.on("listening", (worker) => listening.add(worker));
  cluster.on("exit", (worker, code, signal) => {
    const fields = { worker: worker.id, pid: worker.process.pid, code, signal };
    if (stopping) {
      failed ||= code !== 0;
      logger.info(fields, "worker exited");
      if (workers().length === 0) {
        logger.info({ failed }, "all workers stopped");
        process.exit(failed ? 1 : 0);
      }
      return;
    }
    if (!listening.has(worker)) {
      // It never served: starting another would fail the same way.
      logger.fatal(fields, "a worker failed to start: stopping");
      killAll();
      process.exit(1);
    }
    const now = Date.now();
    restarts.push(now);
    while (restarts[0]! < now - 60_000) restarts.shift();
    if (restarts.length > maxRestartsPerMinute) {
      logger.fatal({ ...fields, restartsLastMinute: restarts.length }, "workers keep dying: stopping");
      killAll();
      process.exit(1);
    }
    logger.error(fields, "worker died: starting a new one");
    cluster.fork();
  });

  const killAll = () => workers().forEach((w) => w.process.kill("SIGKILL"));
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn({ signal }, "second signal: killing the workers");
      killAll();
      process.exit(128 + constants.signals[signal]);
    }
    stopping = true;
    logger.info({ signal, workers: workers().length }, "shutting down: every worker drains its calls");
    workers().forEach((w) => w.send(drainMessage));
    setTimeout(() => {
      logger.error({ stillRunning: workers().map((w) => w.process.pid) }, "workers did not exit after the grace period: killing them");
      failed = true;
      killAll();
    }, options.gracePeriodMs + exitMarginMs).unref();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  process.on("SIGHUP", () => {
    logger.info({ workers: workers().length }, "SIGHUP: every worker re-reads its TLS files");
    workers().forEach((w) => w.send(reloadMessage));
  });
  watchParent(() => {
    logger.warn({ ppid: process.ppid }, "the package-manager script that started the server has exited");
    if (!stopping) onSignal("SIGTERM");
  });

  // node's round robin (the primary accepts and passes each connection on)
  // spreads connections evenly; the kernel's own choice (SCHED_NONE) gave
  // one worker 13 of 16 h2load connections here. Its flaw: a connection in
  // transit to a worker that dies at that moment stays open in the primary
  // and is never served. grpc-go (Tyk) gives up on a connection whose
  // server preface does not come within its 20 s connect timeout and dials
  // again; the worker-crash test shows how often it happens.
  logger.info({ workers: options.workers, pid: process.pid }, "starting workers");
  for (let i = 0; i < options.workers; i++) {
    cluster.fork();
  }
}
