import type { Socket } from "node:net";
import { ByteQueue } from "../../util/byte-queue.js";
import { ACK, defaultMaxFrameSize, frameHeader, HEADERS, headerBlockFragment, preface, prefaceBytes, representations, SETTINGS } from "./frames.js";

/** What the first request on a connection showed. */
export interface SniffResult {
  /** The connection does not start with the HTTP/2 preface: an HTTP/1.x client. */
  readonly http1: boolean;
  /** The client sent a non-empty `:authority`: Node's session can have the socket as it is. */
  readonly authorityOk: boolean;
  /** A SETTINGS frame of ours is still waiting for its ACK, which Node's session must not see. */
  readonly settingsAckPending: boolean;
}

// The most a connection may send before its first HEADERS frame (SETTINGS,
// WINDOW_UPDATE, PRIORITY...): grpc-go sends well under 100 bytes.
const sniffLimit = 64 * 1024;

// The server's connection preface: an empty SETTINGS frame.
const emptySettings = Buffer.from([0, 0, 0, SETTINGS, 0, 0, 0, 0, 0]);

/**
 * Reads a new connection up to its first request's HEADERS frame and tells
 * whether that request carries a non-empty `:authority`; the bytes read are
 * put back into the socket for Node's HTTP/2 session.
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
 * Anything unexpected (no request within `waitMs`, a HEADERS frame it cannot
 * read, more than sniffLimit bytes before one) answers "not ok", so the
 * connection gets the wrapper: slower, never wrong. A frame longer than
 * `maxFrameSize` answers "ok": Node's session gets the socket as it is and
 * refuses the frame itself. A connection whose first bytes are not the
 * HTTP/2 preface is an HTTP/1.x client (`http1`). With `readAuthority`
 * false, only that is told, as soon as the preface has arrived.
 */
export function sniffFirstRequest(socket: Socket, waitMs: number, readAuthority: boolean, maxFrameSize = defaultMaxFrameSize): Promise<SniffResult> {
  return new Promise((resolve) => {
    const kept: Buffer[] = [];
    let keptBytes = 0;
    const data = new ByteQueue();
    let prefaceSeen = 0;
    // The frame being read: its header once complete.
    let head: Buffer | undefined;
    let sentSettings = false;
    let ackSeen = false;
    let headersSeen = false;
    let verdict: boolean | undefined;
    let done = false;

    const finish = (authorityOk: boolean, http1 = false) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.off("data", onDataSafe);
      socket.off("close", onClose);
      socket.pause();
      if (head !== undefined) kept.push(head);
      kept.push(...data.drain());
      socket.unshift(kept.length === 1 ? kept[0]! : Buffer.concat(kept));
      resolve({ http1, authorityOk, settingsAckPending: sentSettings && !ackSeen });
    };
    const keep = (bytes: Buffer) => {
      kept.push(bytes);
      keptBytes += bytes.length;
    };
    const onData = (chunk: Buffer) => {
      data.push(chunk);
      if (prefaceSeen < preface) {
        const n = Math.min(preface - prefaceSeen, data.length);
        const bytes = data.take(n);
        if (!bytes.equals(prefaceBytes.subarray(prefaceSeen, prefaceSeen + n))) {
          keep(bytes);
          return finish(false, true); // not HTTP/2 prior knowledge
        }
        keep(bytes);
        prefaceSeen += n;
        if (prefaceSeen === preface && !readAuthority) {
          return finish(true);
        }
      }
      // Frames up to the first HEADERS, and on to the ACK of our SETTINGS if one is due.
      while (prefaceSeen === preface && (verdict === undefined || (sentSettings && !ackSeen))) {
        if (head === undefined) {
          if (data.length < frameHeader) break;
          head = data.take(frameHeader);
        }
        const length = head.readUIntBE(0, 3);
        if (length > maxFrameSize) {
          return finish(true); // Node refuses it (FRAME_SIZE_ERROR)
        }
        if (data.length < length) break;
        const frame = length === 0 ? head : Buffer.concat([head, data.take(length)]);
        head = undefined;
        const type = frame[3]!;
        if (type === SETTINGS && frame[4]! & ACK && sentSettings && !ackSeen) {
          ackSeen = true; // the ACK of our SETTINGS: Node never sent it
          continue;
        }
        keep(frame);
        if (type === HEADERS && !headersSeen) {
          headersSeen = true;
          verdict = hasAuthority(headerBlockFragment(frame).fragment);
        } else if (keptBytes > sniffLimit) {
          return finish(false); // a client that sends this much before a request gets the wrapper
        }
      }
      if (verdict !== undefined && (!sentSettings || ackSeen)) {
        return finish(verdict);
      }
      if (prefaceSeen === preface && !headersSeen && !sentSettings) {
        // The client waits for the server's preface before its first request.
        sentSettings = true;
        socket.write(emptySettings);
      }
    };
    const onClose = () => finish(false);
    const timer = setTimeout(() => finish(false), waitMs);
    // A throw here would be outside any request: not ok, wrapper (which passes what it cannot read).
    const onDataSafe = (chunk: Buffer) => {
      try {
        onData(chunk);
      } catch {
        finish(false);
      }
    };
    socket.on("data", onDataSafe);
    socket.once("close", onClose);
  });
}

/**
 * Whether a HEADERS frame's fragment has an `:authority` with a non-empty
 * value (static name index 1). Pseudo-headers come first, so a fragment
 * cut short (CONTINUATION follows) still shows it.
 */
function hasAuthority(fragment: Buffer): boolean {
  try {
    for (const r of representations(fragment)) {
      if (r.index === 1 && r.kind !== "size") {
        // Indexed: static (":authority", ""); literal: a value longer than its length byte.
        return r.kind === "literal" && r.end > r.valueStart + 1;
      }
    }
  } catch {
    return false;
  }
  return false; // no :authority by index (or a literal name): let the wrapper look at every request
}
