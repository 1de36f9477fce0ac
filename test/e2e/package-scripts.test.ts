import { strict as assert } from "node:assert";
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { grpcJsClients, unary } from "../helpers/grpc-js.js";
import { repoPath } from "../helpers/paths.js";
import { followLog, type LogFollower } from "../helpers/server-process.js";

// Supervisors (systemd, `timeout`, process managers, CI) signal the process
// they started: with `pnpm start` that is pnpm, not node. These tests start
// the server the way users do and signal pnpm.

// A copy of the project that builds into its own dist/: `pnpm start`
// compiles, and must not rewrite the dist/ the other tests are running from.
let project: string;
before(() => {
  project = mkdtempSync(join(tmpdir(), "tyk-grpc-ts-scripts-"));
  for (const file of ["package.json", "tsconfig.json", "tsconfig.build.json"]) copyFileSync(repoPath(file), join(project, file));
  for (const dir of ["src", "gen", "node_modules"]) symlinkSync(repoPath(dir), join(project, dir));
});
// A test that fails half-way must not leave pnpm or a server behind.
const groups = new Set<number>();
after(() => {
  for (const pgid of groups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  rmSync(project, { recursive: true, force: true });
});

interface ScriptRun {
  readonly pnpm: ChildProcess;
  readonly log: LogFollower;
  /** pnpm's exit code, once it has exited. */
  readonly exited: Promise<number | null>;
}

function pnpm(script: string, args: readonly string[]): ScriptRun {
  const child = spawn("pnpm", [script, "--listen", "127.0.0.1:0", "--users-store", "memory", "--grace-period", "5s", ...args], {
    cwd: project,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group, as under a supervisor: no signal reaches the server but through pnpm.
    detached: true,
    env: { ...process.env, HOST: "", PORT: "", LISTEN: "", DATABASE_URL: "" },
  });
  groups.add(child.pid!);
  const exited = once(child, "exit").then(([code]) => code as number | null);
  return { pnpm: child, log: followLog(child), exited };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Waits (generously) until no process has `pid`. */
async function gone(pid: number, what: string): Promise<void> {
  for (let i = 0; i < 300 && alive(pid); i++) await sleep(100);
  if (alive(pid)) {
    process.kill(pid, "SIGKILL");
    assert.fail(`${what} (pid ${pid}) was still running 30 s later`);
  }
}

async function echo(address: string): Promise<string> {
  const clients = grpcJsClients(address);
  try {
    return (await unary<{ message: string }>(clients.echo, "Reply", { message: "still serving" })).message;
  } finally {
    clients.close();
  }
}

describe("signals to the package-manager process (pnpm start)", () => {
  it("SIGTERM to `pnpm start` drains and stops the server; pnpm exits 0", async () => {
    // tsc runs first: a loaded machine compiles slowly.
    const run = pnpm("start", []);
    const listening = await run.log.waitForLog((l) => l.msg === "server listening", 120_000);
    const pid = listening.pid as number;
    assert.notEqual(pid, run.pnpm.pid, "the server is a child of pnpm, not pnpm itself");
    assert.equal(await echo((listening.addresses as string[])[0]!), "You said: still serving");

    run.pnpm.kill("SIGTERM");
    assert.equal(await run.exited, 0);
    await gone(pid, "the server");
    assert.ok(run.log.lines.some((l) => l.msg === "shutting down: draining in-flight calls" && l.signal === "SIGTERM"));
    assert.ok(run.log.lines.some((l) => l.msg === "server stopped"));
  });

  it("SIGINT to `pnpm serve --workers 2` stops the primary and every worker; the listening lines name the primary", async () => {
    const run = pnpm("serve", ["--workers", "2"]);
    await run.log.waitForLog((l) => l.msg === "server listening" && l.worker === 2, 60_000);
    await run.log.waitForLog((l) => l.msg === "server listening" && l.worker === 1, 60_000);
    const primary = (await run.log.waitForLog((l) => l.msg === "starting workers")).pid as number;
    const listening = run.log.lines.filter((l) => l.msg === "server listening");
    assert.deepEqual(
      listening.map((l) => l.pid),
      [primary, primary],
      "every worker's line gives the pid to signal: the primary's",
    );
    const workers = listening.map((l) => l.workerPid as number);
    assert.ok(workers.every((w) => w !== primary && alive(w)));

    run.pnpm.kill("SIGINT");
    assert.equal(await run.exited, 0);
    for (const pid of [primary, ...workers]) await gone(pid, "a server process");
    assert.ok(run.log.lines.some((l) => l.msg === "all workers stopped" && l.failed === false));
  });

  it("pnpm killed with SIGKILL (it relays nothing): the server notices its parent is gone and drains", async () => {
    const run = pnpm("serve", []);
    const listening = await run.log.waitForLog((l) => l.msg === "server listening", 60_000);
    const pid = listening.pid as number;
    run.pnpm.kill("SIGKILL");
    await run.exited;
    // The server still writes to the pipe pnpm handed it.
    await run.log.waitForLog((l) => l.msg === "the package-manager script that started the server has exited", 30_000);
    await run.log.waitForLog((l) => l.msg === "server stopped", 30_000);
    await gone(pid, "the server");
  });

  it("a server started directly (not by a package-manager script) is not stopped when its parent goes", async () => {
    // A shell that starts the server in the background and exits at once: the server is re-parented.
    const shell = spawn("sh", ["-c", `"${process.execPath}" dist/src/main.js --listen 127.0.0.1:0 --users-store memory & echo $!`], {
      cwd: repoPath(),
      stdio: ["ignore", "pipe", "ignore"],
      env: { ...process.env, npm_lifecycle_event: undefined },
    });
    const pid = Number((await once(shell.stdout!, "data"))[0].toString().trim());
    await once(shell, "exit");
    try {
      // Longer than the watch's 1 s period, several times over.
      await sleep(4000);
      assert.ok(alive(pid), "the server kept running after its parent exited");
    } finally {
      process.kill(pid, "SIGTERM");
      await gone(pid, "the server");
    }
  });
});
