// Just enough of HTTP/2 framing and HPACK to look at a client's header
// blocks before Node's HTTP/2 session does (empty-authority.ts,
// authority-sniff.ts).

/** Length of the client connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
export const preface = 24;
/** The client connection preface itself. */
export const prefaceBytes = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
/** Length of a frame header. */
export const frameHeader = 9;
/** SETTINGS_MAX_FRAME_SIZE when a server announces none (Node's session does not): RFC 9113's initial value. */
export const defaultMaxFrameSize = 16384;
/** Frame types and flags used here. */
export const HEADERS = 0x1;
export const SETTINGS = 0x4;
export const CONTINUATION = 0x9;
export const ACK = 0x1;
export const END_HEADERS = 0x4;
export const PADDED = 0x8;
export const PRIORITY = 0x20;

/** A HEADERS frame's header block fragment and its priority fields (padding removed). */
export function headerBlockFragment(frame: Buffer): { priority: Buffer; fragment: Buffer } {
  const flags = frame[4]!;
  let payload = frame.subarray(frameHeader);
  let priority: Buffer = Buffer.alloc(0);
  if (flags & PADDED) {
    const padLength = payload[0] ?? 0;
    payload = payload.subarray(1, Math.max(1, payload.length - padLength));
  }
  if (flags & PRIORITY) {
    priority = payload.subarray(0, 5);
    payload = payload.subarray(5);
  }
  return { priority, fragment: payload };
}

/** Reads an HPACK integer with an N-bit prefix at pos: [value, next position]. */
function readInt(buf: Buffer, pos: number, prefixBits: number): [number, number] {
  const max = (1 << prefixBits) - 1;
  let value = buf[pos]! & max;
  pos++;
  if (value < max) {
    return [value, pos];
  }
  for (let shift = 0; ; shift += 7) {
    if (pos >= buf.length || shift > 28) throw new RangeError("bad HPACK integer");
    const b = buf[pos++]!;
    value += (b & 0x7f) * 2 ** shift;
    if ((b & 0x80) === 0) return [value, pos];
  }
}

/** Skips an HPACK string literal at pos: the next position. */
function skipString(buf: Buffer, pos: number): number {
  if (pos >= buf.length) throw new RangeError("truncated HPACK string");
  const [length, next] = readInt(buf, pos, 7);
  if (next + length > buf.length) throw new RangeError("truncated HPACK string");
  return next + length;
}

/** One header field representation of an HPACK header block. */
export interface Representation {
  /** "indexed": a whole table entry; "literal": a name (by index, or 0 for a literal name) and a value; "size": a table size update. */
  readonly kind: "indexed" | "literal" | "size";
  /** Byte range of the representation in the block. */
  readonly start: number;
  readonly end: number;
  /** indexed: the table index; literal: the name's table index (0: literal name). */
  readonly index: number;
  /** literal: added to the dynamic table (incremental indexing). */
  readonly incremental: boolean;
  /** literal: where the value's string (length prefix included) starts. */
  readonly valueStart: number;
}

/**
 * The representations of a header block, in order; strings are skipped by
 * length, so no Huffman decoding and no table state are needed. Throws a
 * RangeError on a truncated or malformed block.
 */
export function* representations(block: Buffer): Generator<Representation> {
  let pos = 0;
  while (pos < block.length) {
    const b = block[pos]!;
    const start = pos;
    if (b & 0x80) {
      const [index, next] = readInt(block, pos, 7);
      pos = next;
      yield { kind: "indexed", start, end: pos, index, incremental: false, valueStart: pos };
    } else if ((b & 0xe0) === 0x20) {
      pos = readInt(block, pos, 5)[1];
      yield { kind: "size", start, end: pos, index: 0, incremental: false, valueStart: pos };
    } else {
      // With incremental indexing (01), without (0000) or never indexed (0001).
      const incremental = (b & 0xc0) === 0x40;
      const [index, afterName] = readInt(block, pos, incremental ? 6 : 4);
      const valueStart = index === 0 ? skipString(block, afterName) : afterName;
      pos = skipString(block, valueStart);
      yield { kind: "literal", start, end: pos, index, incremental, valueStart };
    }
  }
}
