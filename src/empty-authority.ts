import { Duplex } from "node:stream";
import type { Socket } from "node:net";
import { ACK, CONTINUATION, END_HEADERS, frameHeader, HEADERS, headerBlockFragment, preface, PRIORITY, representations, SETTINGS } from "./h2-frames.js";

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
// Header blocks are walked representation by representation; strings are
// skipped by length, so no Huffman decoding and no table state are needed.
// Everything else on the connection passes through unchanged.

// Node advertises the protocol's default SETTINGS_MAX_FRAME_SIZE.
const maxFramePayload = 16384;
const authority = Buffer.from("localhost");

/**
 * A Duplex over a client socket that rewrites empty `:authority` pseudo
 * headers in the client's HEADERS frames. Writes go to the socket as they are.
 */
export class EmptyAuthorityFix extends Duplex {
  readonly #socket: Socket;
  #pending = Buffer.alloc(0);
  #prefaceLeft = preface;
  // A header block spread over HEADERS + CONTINUATION frames.
  #block: { streamId: number; flags: number; priority: Buffer; fragments: Buffer[]; raw: Buffer[] } | undefined;
  // authority-sniff.ts sent a SETTINGS frame of its own whose ACK has not
  // come yet: Node's session must not see it (it would be an unexpected ACK).
  #dropSettingsAck: boolean;

  /** `dropSettingsAck`: remove the client's next SETTINGS ACK (see authority-sniff.ts). */
  constructor(socket: Socket, options: { dropSettingsAck?: boolean } = {}) {
    super({ allowHalfOpen: false });
    this.#socket = socket;
    this.#dropSettingsAck = options.dropSettingsAck ?? false;
    // Node's HTTP/2 disables Nagle on sockets it owns, but cannot reach this
    // one through the wrapper; without this, each small frame (WINDOW_UPDATE,
    // SETTINGS ACK) waits for a delayed ACK and large messages crawl (measured:
    // 16 MB took 18 s instead of 0.15 s).
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      if (!this.push(this.#transform(chunk))) {
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

  // Returns the bytes to hand to Node: everything complete so far, rewritten.
  #transform(chunk: Buffer): Buffer {
    let data = this.#pending.length > 0 ? Buffer.concat([this.#pending, chunk]) : chunk;
    const out: Buffer[] = [];
    if (this.#prefaceLeft > 0) {
      const n = Math.min(this.#prefaceLeft, data.length);
      out.push(data.subarray(0, n));
      data = data.subarray(n);
      this.#prefaceLeft -= n;
    }
    let offset = 0;
    while (data.length - offset >= frameHeader) {
      const length = data.readUIntBE(offset, 3);
      if (data.length - offset < frameHeader + length) {
        break;
      }
      const frame = data.subarray(offset, offset + frameHeader + length);
      offset += frameHeader + length;
      const type = frame[3]!;
      if (this.#dropSettingsAck && type === SETTINGS && frame[4]! & ACK) {
        this.#dropSettingsAck = false;
        continue;
      }
      if (type !== HEADERS && type !== CONTINUATION) {
        if (this.#block) {
          // Not allowed inside a header block: pass everything on, let Node reject it.
          out.push(...this.#block.raw);
          this.#block = undefined;
        }
        out.push(frame);
        continue;
      }
      this.#onHeaderFrame(frame, out);
    }
    this.#pending = Buffer.from(data.subarray(offset));
    return Buffer.concat(out);
  }

  #onHeaderFrame(frame: Buffer, out: Buffer[]): void {
    const type = frame[3]!;
    const flags = frame[4]!;
    const streamId = frame.readUInt32BE(5) & 0x7fffffff;
    if (type === HEADERS) {
      if (this.#block) {
        out.push(...this.#block.raw);
      }
      const { priority, fragment: payload } = headerBlockFragment(frame);
      this.#block = { streamId, flags, priority, fragments: [payload], raw: [frame] };
    } else if (this.#block && this.#block.streamId === streamId) {
      this.#block.fragments.push(frame.subarray(frameHeader));
      this.#block.raw.push(frame);
    } else {
      out.push(frame); // stray CONTINUATION: Node reports the protocol error
      return;
    }
    if (flags & END_HEADERS) {
      const block = this.#block!;
      this.#block = undefined;
      const fixed = fixAuthority(Buffer.concat(block.fragments));
      out.push(...(fixed === undefined ? block.raw : frameHeaders(block.streamId, block.flags, block.priority, fixed)));
    }
  }
}

/** The header block with an empty :authority replaced, or undefined when there is none (or it cannot be parsed). */
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
    return undefined;
  }
  if (parts.length === 0) {
    return undefined;
  }
  parts.push(block.subarray(copied));
  return Buffer.concat(parts);
}

// Frames a header block as HEADERS (+ CONTINUATION) without padding.
function frameHeaders(streamId: number, flags: number, priority: Buffer, block: Buffer): Buffer[] {
  const frames: Buffer[] = [];
  const first = block.subarray(0, maxFramePayload - priority.length);
  const keep = flags & (0x1 | PRIORITY); // END_STREAM, PRIORITY
  let rest = block.subarray(first.length);
  frames.push(frame(HEADERS, keep | (rest.length === 0 ? END_HEADERS : 0), streamId, Buffer.concat([priority, first])));
  while (rest.length > 0) {
    const part = rest.subarray(0, maxFramePayload);
    rest = rest.subarray(part.length);
    frames.push(frame(CONTINUATION, rest.length === 0 ? END_HEADERS : 0, streamId, part));
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
