import type * as net from "node:net";
import { formatListenAddress } from "./listen-address.js";

/** A socket's remote address as log lines show it ("ip:port"); undefined for unix socket peers, which have none. */
export function peerOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined } | undefined): string | undefined {
  if (socket?.remoteAddress === undefined) {
    return undefined;
  }
  return formatListenAddress({ kind: "tcp", host: socket.remoteAddress, port: socket.remotePort ?? 0 });
}

/**
 * The TCP socket under a TLS one (what the connection tables hold). If node
 * ever drops this internal field, TLS connections simply count as never
 * served: the first to be closed at the connection cap.
 */
export function rawSocketOf(socket: net.Socket): net.Socket {
  return (socket as net.Socket & { _parent?: net.Socket })._parent ?? socket;
}
