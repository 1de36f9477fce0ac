/**
 * A gRPC length-prefixed message: the flag byte (0 uncompressed, 1
 * compressed), the 4-byte big-endian length (`declaredLength`, normally the
 * message's own, a lie in tests of broken framing), then the bytes.
 */
export function grpcFrame(message: Uint8Array, flag = 0, declaredLength = message.length): Buffer {
  const head = Buffer.alloc(5);
  head[0] = flag;
  head.writeUInt32BE(declaredLength >>> 0, 1);
  return Buffer.concat([head, message]);
}
