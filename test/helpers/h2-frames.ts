// Raw HTTP/2 frames for tests that must send what no HTTP/2 library sends
// (an empty :authority as grpc-go encodes it, floods of CONTINUATION frames,
// lying frame lengths).

/** The client connection preface. */
export const clientPreface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** One frame: 24-bit length, type, flags, stream id, payload. */
export function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(payload.length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return Buffer.concat([h, payload]);
}

/** A frame header declaring `length` bytes of payload, without the payload. */
export function frameHead(type: number, flags: number, stream: number, length: number): Buffer {
  const h = Buffer.alloc(9);
  h.writeUIntBE(length, 0, 3);
  h[3] = type;
  h[4] = flags;
  h.writeUInt32BE(stream, 5);
  return h;
}

/** A request header block for Echo.Reply, with :authority as the indexed static entry when empty (as grpc-go sends it). */
export function headerBlock(authority: string, path = "/echo.Echo/Reply"): Buffer {
  const str = (s: string) => [s.length, ...Buffer.from(s)];
  return Buffer.from([
    0x83, // :method POST
    0x86, // :scheme http
    0x04,
    ...str(path), // :path, literal without indexing
    ...(authority === "" ? [0x81] : [0x01, ...str(authority)]), // :authority
    0x0f,
    0x10,
    ...str("application/grpc"),
    0x00,
    ...str("te"),
    ...str("trailers"),
  ]);
}

/** The frames in `bytes` that are complete: type, flags, stream and payload each. */
export function parseFrames(bytes: Buffer): Array<{ type: number; flags: number; stream: number; payload: Buffer }> {
  const frames = [];
  let at = 0;
  while (bytes.length - at >= 9) {
    const length = bytes.readUIntBE(at, 3);
    if (bytes.length - at < 9 + length) break;
    frames.push({
      type: bytes[at + 3]!,
      flags: bytes[at + 4]!,
      stream: bytes.readUInt32BE(at + 5) & 0x7fffffff,
      payload: bytes.subarray(at + 9, at + 9 + length),
    });
    at += 9 + length;
  }
  return frames;
}

/** Frame types used by the tests. */
export const DATA = 0x0;
export const HEADERS = 0x1;
export const SETTINGS = 0x4;
export const GOAWAY = 0x7;
export const CONTINUATION = 0x9;
