import type { Socket } from "node:net";
import { ACK, CONTINUATION, END_HEADERS, frameHeader, HEADERS, headerBlockFragment, preface, prefaceBytes, representations, SETTINGS } from "./h2-frames.js";

/** What the first request on a connection showed. */
export interface SniffResult {
  /** The connection does not start with the HTTP/2 preface: an HTTP/1.x client. */
  readonly http1: boolean;
  /** The client sent a non-empty `:authority`: Node's session can have the socket as it is. */
  readonly authorityOk: boolean;
  /** A SETTINGS frame of ours is still waiting for its ACK, which Node's session must not see. */
  readonly settingsAckPending: boolean;
}

// The server's connection preface: an empty SETTINGS frame.
const emptySettings = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);

/**
 * Reads a new connection up to the end of its first request's header block
 * and tells whether that request carries a non-empty `:authority`; the bytes
 * read are put back into the socket for Node's HTTP/2 session.
 *
 * Why: EmptyAuthorityFix (for Tyk <= 5.8.2, which sends `:authority: ""`)
 * routes every byte of a connection through JavaScript, which costs about a
 * quarter of the server's throughput. A grpc-go client sends one authority
 * for every call on a connection, so its first request decides whether the
 * connection needs the fix. grpc-go sends no request before the server's
 * preface, so when the client waits after its own preface this sends an
 * empty SETTINGS frame as the server's preface (a server may send several
 * SETTINGS frames) and removes the client's ACK of it. Node's session sends
 * its own SETTINGS after the hand-over, as usual.
 *
 * Anything unexpected (no request within `waitMs`, a header block it cannot
 * read) answers "not ok", so the connection gets the wrapper: slower, never
 * wrong. A connection whose first bytes are not the HTTP/2 preface is an
 * HTTP/1.x client (`http1`). With `readAuthority` false, only that is told,
 * as soon as the preface has arrived.
 */
export function sniffFirstRequest(socket: Socket, waitMs: number, readAuthority: boolean): Promise<SniffResult> {
  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let data: Buffer = Buffer.alloc(0);
    let prefaceLeft = preface;
    let sentSettings = false;
    let ackSeen = false;
    let block: Buffer[] | undefined;
    let verdict: boolean | undefined;
    let done = false;

    const finish = (authorityOk: boolean, http1 = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.pause();
      kept.push(data);
      socket.unshift(Buffer.concat(kept));
      resolve({ http1, authorityOk, settingsAckPending: sentSettings && !ackSeen });
    };
    const onData = (chunk: Buffer) => {
      data = data.length === 0 ? chunk : Buffer.concat([data, chunk]);
      if (prefaceLeft > 0) {
        const n = Math.min(prefaceLeft, data.length);
        if (!data.subarray(0, n).equals(prefaceBytes.subarray(preface - prefaceLeft, preface - prefaceLeft + n))) {
          return finish(false, true); // not HTTP/2 prior knowledge
        }
        kept.push(data.subarray(0, n));
        data = data.subarray(n);
        prefaceLeft -= n;
        if (prefaceLeft === 0 && !readAuthority) {
          return finish(true);
        }
      }
      while (data.length >= frameHeader) {
        const length = data.readUIntBE(0, 3);
        if (data.length < frameHeader + length) break;
        const frame = data.subarray(0, frameHeader + length);
        data = data.subarray(frameHeader + length);
        const type = frame[3]!;
        if (type === SETTINGS && frame[4]! & ACK && sentSettings && !ackSeen) {
          ackSeen = true; // the ACK of our SETTINGS: Node never sent it
          continue;
        }
        kept.push(frame);
        if (verdict !== undefined) continue;
        if (type === HEADERS) {
          block = [headerBlockFragment(frame).fragment];
        } else if (type === CONTINUATION && block !== undefined) {
          block.push(frame.subarray(frameHeader));
        } else {
          continue;
        }
        if (frame[4]! & END_HEADERS) {
          verdict = hasAuthority(Buffer.concat(block));
        }
      }
      if (verdict !== undefined && (!sentSettings || ackSeen)) {
        return finish(verdict);
      }
      if (prefaceLeft === 0 && block === undefined && !sentSettings) {
        // The client waits for the server's preface before its first request.
        sentSettings = true;
        socket.write(emptySettings);
      }
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), waitMs);
    socket.on("data", onData);
    socket.once("close", onClose);
  });
}

/** Whether a header block has an `:authority` with a non-empty value (static name index 1). */
function hasAuthority(block: Buffer): boolean {
  try {
    for (const r of representations(block)) {
      if (r.index === 1 && r.kind !== "size") {
        // Indexed: static (":authority", ""); literal: a value longer than its length byte.
        return r.kind === "literal" && r.end > r.valueStart + 1;
      }
    }
  } catch {
    return false;
  }
  return false; // no :authority by index (or a literal name): let the wrapper look at every block
}
