import type * as net from "node:net";
import type { Logger } from "../observability/logger.js";
import { formatListenAddress, type ListenAddress } from "./listen-address.js";
import { prepareSocketPath, secureSocketFile, socketUmask } from "./unix-socket.js";

/** How unix socket files are made. */
export interface SocketFileOptions {
  /** Clear a stale socket file first (under --workers the primary has done it). */
  readonly prepare: boolean;
  /** The group of the socket file (name or id); its mode is always 0660. */
  readonly group?: string | undefined;
}

/**
 * Binds `server` to `address` and resolves with the address actually bound
 * (port 0 resolved to the real port). The default "::" falls back to
 * 0.0.0.0 on hosts without IPv6.
 */
export async function bind(server: net.Server, address: ListenAddress, logger: Logger, socketFile: SocketFileOptions): Promise<ListenAddress> {
  const listen = (options: { host: string; port: number } | { path: string }, umask?: number) =>
    new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      // The socket file is created inside listen() itself (in this process;
      // under --workers the primary binds and the mode is set just after).
      const previous = umask === undefined ? undefined : process.umask(umask);
      try {
        server.listen(options, () => {
          server.off("error", reject);
          resolve();
        });
      } finally {
        if (previous !== undefined) process.umask(previous);
      }
    });
  if (address.kind === "unix") {
    if (socketFile.prepare) {
      await prepareSocketPath(address.path, logger);
    }
    await listen({ path: address.path }, socketUmask);
    secureSocketFile(address.path, socketFile.group);
    return address;
  }
  try {
    await listen({ host: address.host, port: address.port });
  } catch (e) {
    // The default "::" fails on hosts without IPv6; all IPv4 interfaces is what was meant.
    if (address.host !== "::" || (e as NodeJS.ErrnoException).code !== "EAFNOSUPPORT") {
      throw e;
    }
    logger.warn("IPv6 is not available: listening on 0.0.0.0 instead of [::]");
    await listen({ host: "0.0.0.0", port: address.port });
  }
  const bound = server.address();
  if (bound === null || typeof bound === "string") {
    throw new Error(`no TCP address after listening on ${formatListenAddress(address)}`);
  }
  return { kind: "tcp", host: bound.address, port: bound.port };
}
