import { lstatSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import type { Logger } from "./logger.js";

/**
 * Makes `path` free for a unix socket listener. A socket file left by a
 * process that died is removed; a socket another server still answers on,
 * or a file that is not a socket, is an error (never deleted).
 */
export async function prepareSocketPath(path: string, logger: Logger): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") {
      return;
    }
    throw e;
  }
  if (!isSocket) {
    throw new Error(`${path} exists and is not a socket: refusing to replace it`);
  }
  const inUse = await new Promise<boolean>((resolve) => {
    const probe = connect(path);
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
  if (inUse) {
    throw new Error(`another server is listening on ${path}`);
  }
  unlinkSync(path);
  logger.info({ path }, "removed stale socket file");
}

/** Removes socket files we created; for exits that skip the servers' close (which removes them itself). */
export function removeSocketFiles(paths: readonly string[]): void {
  for (const path of paths) {
    try {
      // Only ever a socket: never a file that happens to have the name.
      if (lstatSync(path).isSocket()) {
        unlinkSync(path);
      }
    } catch {
      // already gone
    }
  }
}
