import { strict as assert } from "node:assert";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, before } from "node:test";
import { pathToFileURL } from "node:url";
import type { MemoryFigures } from "./memory-probe.js";
import { repoPath } from "./paths.js";

/** One JSON log line of the server. */
export type LogLine = Record<string, unknown> & { msg?: string; level?: number };

/** A running server process started from the compiled entry point. */
export interface ServerProcess {
  readonly child: ChildProcess;
  /** `http://127.0.0.1:PORT` */
  readonly baseUrl: string;
  /** `127.0.0.1:PORT` */
  readonly address: string;
  /** `https://127.0.0.1:PORT` of the first --tls-listen address, if any. */
  readonly tlsBaseUrl: string | undefined;
  /** `http://127.0.0.1:PORT` of the first --http-listen address, if any. */
  readonly httpBaseUrl: string | undefined;
  /** Every stdout line so far, parsed (non-JSON lines as `{ raw }`). */
  readonly lines: LogLine[];
  /** Raw stdout so far. */
  stdout(): string;
  /** Resolves with the first log line (past or future) matching `pred`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Sends a signal and waits for the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** The server's memory figures (needs `memoryProbe`; after a full GC with `--expose-gc`). */
  memory(): Promise<MemoryFigures>;
}

/** Extra settings of startServerProcess. */
export interface ServerProcessOptions {
  /** Options for node itself, before the entry point. */
  readonly nodeArgs?: readonly string[];
  /** Preload test/helpers/memory-probe.ts, so that `memory()` works. */
  readonly memoryProbe?: boolean;
}

const running = new Set<ChildProcess>();
// A test that fails half-way must not leave servers behind.
process.on("exit", () => running.forEach((c) => c.kill("SIGKILL")));

/**
 * Starts `node dist/src/main.js` with debug logging (the helper waits for its
 * info-level "server listening" line) on 127.0.0.1 port 0, unless `args`
 * has --listen addresses of its own.
 */
export async function startServerProcess(args: readonly string[] = [], options: ServerProcessOptions = {}): Promise<ServerProcess> {
  const listen = args.includes("--listen") ? [] : ["--listen", "127.0.0.1:0"];
  // Tests start from an empty store, and leave no data directory behind.
  const store = args.includes("--users-store") ? [] : ["--users-store", "memory"];
  const probe = options.memoryProbe ? ["--import", pathToFileURL(repoPath("dist", "test", "helpers", "memory-probe.js")).href] : [];
  const child = spawn(
    process.execPath,
    [...(options.nodeArgs ?? []), ...probe, repoPath("dist", "src", "main.js"), ...listen, ...store, "--log-level", "debug", ...args],
    {
      stdio: ["ignore", "pipe", "pipe", ...(options.memoryProbe ? ["ipc" as const] : [])],
      env: { ...process.env, HOST: "", PORT: "", LISTEN: "", DATABASE_URL: "" },
    },
  );
  running.add(child);
  // "close": the process has exited and its stdout has been read to the end.
  const exited = once(child, "close").then(([code]) => {
    running.delete(child);
    return code as number | null;
  });
  const { lines, stdout, waitForLog } = followLog(child);

  // PGlite creating a new data directory before listening takes seconds on its own.
  const listening = await waitForLog((l) => l.msg === "server listening", 60_000);
  const address = (listening.addresses as string[])[0]!;
  const tlsAddress = (listening.tlsAddresses as string[] | undefined)?.[0];
  const httpAddress = (listening.httpAddresses as string[] | undefined)?.[0];
  return {
    child,
    address,
    tlsBaseUrl: tlsAddress && `https://${tlsAddress}`,
    httpBaseUrl: httpAddress && `http://${httpAddress}`,
    baseUrl: `http://${address}`,
    lines,
    stdout,
    waitForLog,
    exited,
    async memory() {
      const reply = once(child, "message").then(([m]) => (m as { memory: MemoryFigures }).memory);
      child.send("memory");
      return reply;
    },
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
      }
      return exited;
    },
  };
}

/**
 * One server process for a whole describe block: started before its tests,
 * stopped after them with SIGTERM, which must exit 0. Returns a getter.
 */
export function useServerProcess(args: readonly string[] = []): () => ServerProcess {
  let server: ServerProcess | undefined;
  before(async () => {
    server = await startServerProcess(args);
  });
  after(async () => {
    assert.equal(await server?.stop(), 0);
  });
  return () => server!;
}

/** The JSON log lines a child process writes to stdout, as they come. */
export interface LogFollower {
  /** Every stdout line so far, parsed (non-JSON lines as `{ raw }`). */
  readonly lines: LogLine[];
  /** Raw stdout so far. */
  stdout(): string;
  /** Resolves with the first line (past or future) matching `pred`; rejects when the child exits first or after `timeoutMs`. */
  waitForLog(pred: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
}

/** Follows `child`'s stdout (and keeps its stderr for error messages). */
export function followLog(child: ChildProcess): LogFollower {
  let raw = "";
  let stderr = "";
  const lines: LogLine[] = [];
  const waiters = new Set<() => void>();
  child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on("line", (line) => {
    raw += `${line}\n`;
    try {
      lines.push(JSON.parse(line) as LogLine);
    } catch {
      lines.push({ raw: line });
    }
    waiters.forEach((w) => w());
  });

  // Generous: a loaded 2-core machine starts processes and writes lines slowly.
  const waitForLog = (pred: (line: LogLine) => boolean, timeoutMs = 20_000) =>
    new Promise<LogLine>((resolve, reject) => {
      const check = () => {
        const found = lines.find(pred);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching log line within ${timeoutMs} ms; stdout:\n${raw}\nstderr:\n${stderr}`));
      }, timeoutMs);
      const onExit = () => {
        check();
        cleanup();
        reject(new Error(`process exited; stdout:\n${raw}\nstderr:\n${stderr}`));
      };
      const cleanup = () => {
        clearTimeout(timer);
        waiters.delete(check);
        child.off("exit", onExit);
      };
      waiters.add(check);
      child.once("exit", onExit);
      check();
    });
  return { lines, stdout: () => raw, waitForLog };
}
