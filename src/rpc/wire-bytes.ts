// The bytes a request message was parsed from, kept on the message by the
// gRPC fast path for methods whose reply has the request's type (Dispatch):
// the Dispatch Object log hands them to the log thread as they are, and a
// Dispatch reply that no hook changed is sent as them, instead of encoding
// the Object again on the event loop.
// Symbol keys: invisible to toBinary, toJson, equals and JSON.stringify.
const kWireBytes = Symbol("wire bytes");
const kReplyAsReceived = Symbol("reply as received");

type WithWireBytes = { [kWireBytes]?: Uint8Array; [kReplyAsReceived]?: boolean };

/** Remembers the serialized form `message` was parsed from; returns the message. */
export function keepWireBytes<T extends object>(message: T, bytes: Uint8Array): T {
  const m = message as WithWireBytes;
  m[kWireBytes] = bytes;
  m[kReplyAsReceived] = false; // (both keys from the start: every parsed message keeps one shape)
  return message;
}

/** The bytes `message` was parsed from, if the fast path kept them. */
export function wireBytesOf(message: object): Uint8Array | undefined {
  return (message as WithWireBytes)[kWireBytes];
}

/**
 * Declares that `message`, returned as a reply, is exactly what it was when
 * parsed: nothing has changed it since. Only code that knows every change
 * that could have been made (the plugin host, which sees them all through
 * TykRequest, TykResponse and outcomes) may say so.
 */
export function replyAsReceived(message: object): void {
  const m = message as WithWireBytes;
  if (m[kWireBytes] !== undefined) {
    m[kReplyAsReceived] = true;
  }
}

/**
 * The bytes to send for a reply declared unchanged by replyAsReceived: the
 * same message as encoding it again would give (decoded, they are equal),
 * including unknown fields, at no cost. Undefined otherwise.
 */
export function receivedBytesToReply(message: object): Uint8Array | undefined {
  const m = message as WithWireBytes;
  return m[kReplyAsReceived] === true ? m[kWireBytes] : undefined;
}
