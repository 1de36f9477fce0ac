import { chmodSync, chownSync, lstatSync, readFileSync, unlinkSync } from "node:fs";
import { connect } from "node:net";
import type { Logger } from "../observability/logger.js";

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

/**
 * Read and write for the socket's owner and group only: connecting to a
 * unix socket needs write permission on it, so this is who may call the
 * server. (Left to the umask, it was 0777 at umask 000: anyone on the host.)
 */
export const socketFileMode = 0o660;

/** The umask to bind a socket file with, so that it never exists with a wider mode than socketFileMode. */
export const socketUmask = 0o117;

/**
 * Gives a socket file just made its mode (socketFileMode) and, when `group`
 * is set, that group (a name from /etc/group, or a numeric id), so that a
 * gateway running as another user in that group may connect. Throws a
 * message saying what failed (chown to a group needs membership of it).
 */
export function secureSocketFile(path: string, group: string | undefined): void {
  if (group !== undefined) {
    const gid = groupId(group);
    try {
      chownSync(path, -1, gid);
    } catch (e) {
      throw new Error(`cannot give ${path} to group ${group} (${gid}): ${(e as Error).message}`);
    }
  }
  chmodSync(path, socketFileMode);
}

/** A group's id from its name or number (/etc/group; node has no getgrnam). */
export function groupId(group: string, groupFile = "/etc/group"): number {
  if (/^\d+$/.test(group)) {
    return Number(group);
  }
  let text = "";
  try {
    text = readFileSync(groupFile, "utf8");
  } catch {
    // no group database: only numeric ids work
  }
  for (const line of text.split("\n")) {
    const [name, , gid] = line.split(":");
    if (name === group && gid !== undefined && /^\d+$/.test(gid)) {
      return Number(gid);
    }
  }
  throw new Error(`unknown group "${group}" (not in ${groupFile}; a numeric id also works)`);
}
