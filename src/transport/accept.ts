import type * as net from "node:net";
import type * as tls from "node:tls";
import type { Logger } from "../observability/logger.js";
import { sniffFirstRequest } from "./h2/authority-sniff.js";
import { EmptyAuthorityFix } from "./h2/empty-authority.js";
import { peerOf } from "./peer-address.js";

/** Where an accepted connection goes, by its protocol. */
export interface Acceptors {
  readonly http1: (socket: net.Socket) => void;
  readonly http2: (socket: net.Socket, stream: net.Socket | EmptyAuthorityFix) => void;
}

// How long a new connection may take to send its first request's headers
// before it is served through the empty-:authority wrapper anyway.
const sniffWaitMs = 1000;

// A connection reset while its first request is being looked at concerns nobody else.
const ignoreSniffError = () => undefined;

/**
 * Accepts plaintext connections: HTTP/1.1 or HTTP/2 by the first bytes; and
 * only connections whose first request has an empty :authority pay for the
 * rewriting wrapper (see h2/authority-sniff.ts).
 */
export function plaintextAcceptor(to: Acceptors, logger: Logger, acceptEmptyAuthority: boolean): (socket: net.Socket) => void {
  return (socket) => {
    socket.on("error", ignoreSniffError);
    sniffFirstRequest(socket, sniffWaitMs, acceptEmptyAuthority).then(({ http1, authorityOk, settingsAckPending }) => {
      socket.off("error", ignoreSniffError);
      if (socket.destroyed) {
        logger.debug({ peer: peerOf(socket) }, "connection closed before its first request");
        return;
      }
      if (http1) {
        to.http1(socket);
        return;
      }
      const rewrite = acceptEmptyAuthority && !authorityOk;
      logger.debug({ peer: peerOf(socket), rewriteAuthority: rewrite }, "connection accepted");
      to.http2(socket, rewrite ? new EmptyAuthorityFix(socket, { dropSettingsAck: settingsAckPending }) : socket);
    });
  };
}

/** Accepts TLS connections by the protocol their handshake chose (ALPN): h2, else HTTP/1.1. */
export function tlsAcceptor(to: Acceptors): (socket: tls.TLSSocket) => void {
  return (socket) => (socket.alpnProtocol === "h2" ? to.http2(socket, socket) : to.http1(socket));
}
