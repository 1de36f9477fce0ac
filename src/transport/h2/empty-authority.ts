import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { ByteQueue } from "../../util/byte-queue.js";
import {
  ACK,
  CONTINUATION,
  defaultMaxFrameSize,
  END_HEADERS,
  frameHeader,
  HEADERS,
  headerBlockFragment,
  PRIORITY,
  preface,
  representations,
  SETTINGS,
} from "./frames.js";

// Tyk Gateway <= 5.8.2 dials with an empty target and, unless
// `grpc_authority` is set, sends `:authority: ""`. Node's HTTP/2 server
// (nghttp2) resets such streams with PROTOCOL_ERROR before any JavaScript
// runs, and offers no option to accept them. This stream sits between the
// socket and Node's HTTP/2 session and replaces the empty value with
// "localhost" (what grpc-go sends for unix targets).
//
// grpc-go's HPACK encoder sends `:authority: ""` as the indexed field 1 of the
// static table (the one byte 0x81). We swap it for a literal *without
// indexing* of `:authority: localhost`: neither representation touches the
// dynamic table, so the client's encoder and Node's decoder stay in step.
// Pseudo-headers come first in a header block, so only the HEADERS frame
// itself is looked at; its representations are walked one by one, strings
// skipped by length, so no Huffman decoding and no table state are needed.
//
// Everything else streams through as it arrives, CONTINUATION frames and
// frames of any declared length included: Node's session sees them as the
// client sent them and applies its own limits (frame size, header list size,
// CONTINUATION count; each a GOAWAY and a log line). Only a HEADERS frame is
// held until it is complete, and only up to the frame size Node accepts;
// beyond that, or on anything else it cannot read, the wrapper stops
// looking and passes the rest of the connection on untouched. (It used to
// collect whole header blocks and incomplete frames of any declared length:
// one connection sending endless CONTINUATION frames took 4.4 GB.)

const authority = Buffer.from("localhost");

/** Options of the wrapper. */
export interface EmptyAuthorityFixOptions {
  /** Remove the client's next SETTINGS ACK (see authority-sniff.ts). */
  readonly dropSettingsAck?: boolean;
  /** SETTINGS_MAX_FRAME_SIZE that Node's session advertises (default 16384). */
  readonly maxFrameSize?: number;
}

/**
 * A Duplex over a client socket that rewrites empty `:authority` pseudo
 * headers in the client's HEADERS frames. Writes go to the socket as they are.
 */
export class EmptyAuthorityFix extends Duplex {
  readonly #socket: Socket;
  readonly #maxFrameSize: number;
  #prefaceLeft = preface;
  // A frame header, or a whole HEADERS frame, still being received.
  readonly #partial = new ByteQueue();
  // The HEADERS frame being collected: its header (9 bytes) once read.
  #headersFrame: Buffer | undefined;
  // Payload bytes of the current (non-HEADERS) frame still to pass through.
  #passing = 0;
  // Set when the wrapper has stopped looking: every byte passes through.
  #raw = false;
  // authority-sniff.ts sent a SETTINGS frame of its own whose ACK has not
  // come yet: Node's session must not see it (it would be an unexpected ACK).
  #dropSettingsAck: boolean;

  constructor(socket: Socket, options: EmptyAuthorityFixOptions = {}) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#dropSettingsAck = options.dropSettingsAck ?? false;
    this.#maxFrameSize = options.maxFrameSize ?? defaultMaxFrameSize;
    // Node's HTTP/2 disables Nagle on sockets it owns, but cannot reach this
    // one through the wrapper; without this, each small frame (WINDOW_UPDATE,
    // SETTINGS ACK) waits for a delayed ACK and large messages crawl (a
    // hundred times slower for 16 MB).
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      let out: Buffer[];
      try {
        out = this.#transform(chunk);
      } catch (err) {
        // Nothing here should throw; if it does, this connection ends (Node's
        // session logs why) rather than the process.
        this.destroy(err as Error);
        return;
      }
      if (out.length > 0 && !this.push(out.length === 1 ? out[0] : Buffer.concat(out))) {
        socket.pause();
      }
    });
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  /** The client's address, for logs (Node's HTTP/2 reads it from its socket). */
  get remoteAddress(): string | undefined {
    return this.#socket.remoteAddress;
  }

  get remotePort(): number | undefined {
    return this.#socket.remotePort;
  }

  override _read(): void {
    this.#socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.write(chunk, callback);
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.#socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.#socket.destroy(error ?? undefined);
    callback(error);
  }

  // The bytes to hand to Node for this chunk, rewritten where needed: views
  // of the chunk wherever nothing changes.
  #transform(chunk: Buffer): Buffer[] {
    if (this.#raw) {
      return [chunk];
    }
    const out: Buffer[] = [];
    let pos = 0;
    if (this.#prefaceLeft > 0) {
      const n = Math.min(this.#prefaceLeft, chunk.length);
      out.push(chunk.subarray(0, n));
      this.#prefaceLeft -= n;
      pos = n;
    }
    while (pos < chunk.length && !this.#raw) {
      if (this.#passing > 0) {
        const n = Math.min(this.#passing, chunk.length - pos);
        out.push(chunk.subarray(pos, pos + n));
        this.#passing -= n;
        pos += n;
        continue;
      }
      // Collect a frame header, or the rest of a HEADERS frame.
      const partial = this.#partial;
      const need = this.#headersFrame === undefined ? frameHeader : this.#headersFrame.readUIntBE(0, 3);
      const n = Math.min(need - partial.length, chunk.length - pos);
      partial.push(chunk.subarray(pos, pos + n));
      pos += n;
      if (partial.length < need) {
        break;
      }
      if (this.#headersFrame !== undefined) {
        const frame = Buffer.concat([this.#headersFrame, partial.take(need)]);
        this.#headersFrame = undefined;
        out.push(...rewriteHeaders(frame, this.#maxFrameSize));
        continue;
      }
      this.#onFrameHeader(partial.take(frameHeader), out);
    }
    if (this.#raw && pos < chunk.length) {
      out.push(chunk.subarray(pos));
    }
    return out;
  }

  #onFrameHeader(head: Buffer, out: Buffer[]): void {
    const length = head.readUIntBE(0, 3);
    const type = head[3]!;
    if (this.#dropSettingsAck && type === SETTINGS && head[4]! & ACK && length === 0) {
      this.#dropSettingsAck = false; // the ACK of the sniff's SETTINGS: Node never sent it
      return;
    }
    if (type === HEADERS && length <= this.#maxFrameSize) {
      if (length === 0) {
        out.push(...rewriteHeaders(head, this.#maxFrameSize));
      } else {
        this.#headersFrame = Buffer.from(head); // (a view of a chunk that is passed on)
      }
      return;
    }
    out.push(head);
    if (type === HEADERS) {
      // Larger than Node accepts: Node answers it (FRAME_SIZE_ERROR); nothing more to look at.
      this.#raw = true;
      return;
    }
    this.#passing = length;
  }
}

/**
 * A HEADERS frame with an empty :authority in its fragment replaced, as
 * one or more frames; the frame itself when there is none. Representations
 * are read up to the end of the fragment, or to one cut by its end (the
 * block goes on in CONTINUATION frames): the pseudo-headers come first.
 */
function rewriteHeaders(frame: Buffer, maxFrameSize: number): Buffer[] {
  const { priority, fragment } = headerBlockFragment(frame);
  const fixed = fixAuthority(fragment);
  if (fixed === undefined) {
    return [frame];
  }
  return frameHeaders(frame.readUInt32BE(5) & 0x7fffffff, frame[4]!, priority, fixed, maxFrameSize);
}

/** The fragment with an empty :authority replaced, or undefined when it has none. */
function fixAuthority(block: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let copied = 0;
  const replace = (start: number, end: number, firstByte: number) => {
    parts.push(block.subarray(copied, start), Buffer.from([firstByte, authority.length]), authority);
    copied = end;
  };
  try {
    for (const r of representations(block)) {
      if (r.kind === "indexed" && r.index === 1) {
        replace(r.start, r.end, 0x01); // static index 1 is (":authority", "")
      } else if (r.kind === "literal" && r.index === 1 && !r.incremental && r.end === r.valueStart + 1) {
        // An indexed copy would change both dynamic tables differently; only
        // the non-indexing forms are rewritten.
        replace(r.start, r.end, (block[r.start]! & 0xf0) | 0x01);
      }
    }
  } catch {
    // A representation cut by the end of the fragment: what follows is left as it is.
  }
  if (parts.length === 0) {
    return undefined;
  }
  parts.push(block.subarray(copied));
  return Buffer.concat(parts);
}

// Frames a header block fragment as HEADERS (+ CONTINUATION when it no
// longer fits one frame) without padding; END_HEADERS stays where it was.
function frameHeaders(streamId: number, flags: number, priority: Buffer, block: Buffer, maxFrameSize: number): Buffer[] {
  const frames: Buffer[] = [];
  const first = block.subarray(0, maxFrameSize - priority.length);
  const keep = flags & (0x1 | PRIORITY); // END_STREAM, PRIORITY
  const endHeaders = flags & END_HEADERS;
  let rest = block.subarray(first.length);
  frames.push(frame(HEADERS, keep | (rest.length === 0 ? endHeaders : 0), streamId, Buffer.concat([priority, first])));
  while (rest.length > 0) {
    const part = rest.subarray(0, maxFrameSize);
    rest = rest.subarray(part.length);
    frames.push(frame(CONTINUATION, rest.length === 0 ? endHeaders : 0, streamId, part));
  }
  return frames;
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(frameHeader);
  head.writeUIntBE(payload.length, 0, 3);
  head[3] = type;
  head[4] = flags;
  head.writeUInt32BE(streamId, 5);
  return Buffer.concat([head, payload]);
}
