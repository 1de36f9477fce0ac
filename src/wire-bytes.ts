// The bytes a request message was parsed from, kept on the message by the
// gRPC fast path so that the Dispatch Object log can hand them to the log
// thread as they are instead of encoding the Object again on the event loop.
// A symbol key: invisible to toBinary, toJson, equals and JSON.stringify.
const kWireBytes = Symbol("wire bytes");

type WithWireBytes = { [kWireBytes]?: Uint8Array };

/** Remembers the serialized form `message` was parsed from; returns the message. */
export function keepWireBytes<T extends object>(message: T, bytes: Uint8Array): T {
  (message as WithWireBytes)[kWireBytes] = bytes;
  return message;
}

/** The bytes `message` was parsed from, if the fast path kept them. */
export function wireBytesOf(message: object): Uint8Array | undefined {
  return (message as WithWireBytes)[kWireBytes];
}
