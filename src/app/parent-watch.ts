/**
 * Calls `onGone` once when the process that started this one has exited,
 * if this process was started by a package-manager script (`pnpm start`,
 * `npm run serve`). Such a script's runner relays SIGTERM and SIGINT to the
 * server, but a runner killed with SIGKILL, or one that does not relay a
 * signal (pnpm dies of SIGHUP), leaves the server running with no one to
 * stop it, still holding its port: the re-parented process notices and
 * drains instead. A server started directly (`node dist/src/main.js`, a
 * container's CMD, systemd) is not watched: its parent going away says
 * nothing about whether it should stop.
 */
export function watchParent(onGone: () => void, env: NodeJS.ProcessEnv = process.env, intervalMs = 1000): void {
  if (!env.npm_lifecycle_event) return;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid !== parent) {
      clearInterval(timer);
      onGone();
    }
  }, intervalMs);
  // Never the reason the process stays up.
  timer.unref();
}
