import { Code, ConnectError } from "@connectrpc/connect";
import { type Compression, compressedFlag } from "@connectrpc/connect/protocol";
import type { ChargedCompression } from "../../transport/compression.js";
import type { CallMemory } from "../../transport/memory-budget.js";
import { ByteQueue } from "../../util/byte-queue.js";
import { type MaybePromise, then } from "../../util/maybe-promise.js";

/**
 * Collects the request message of a unary call from the chunks of its
 * HTTP/2 stream, with the checks and error statuses of connect's gRPC
 * handler, in the same order: an oversize length prefix fails as soon as it
 * arrives; then the first message is decompressed and parsed; a second
 * message is parsed and refused; leftover bytes are an incomplete envelope;
 * no message at all is a missing input.
 *
 * One difference, in timing only: connect parses the first message as soon
 * as it is complete, this waits for the end of the request (or a second
 * message), so a client that never half-closes hears nothing until its
 * deadline or cancel, where connect would answer a malformed first message
 * early. No unary client behaves that way.
 */
export class UnaryEnvelopes {
  readonly #readMaxBytes: number;
  // Bytes received and not yet taken as a message: a message is copied out
  // once, when it is complete, so a message in n chunks costs O(n).
  readonly #pending = new ByteQueue();
  // The length prefix of the envelope being received, once its 5 bytes are in.
  #length = -1;
  #flags = 0;
  #first: Uint8Array | undefined;
  #firstFlags = 0;
  #second: Uint8Array | undefined;
  #secondFlags = 0;

  constructor(readMaxBytes: number) {
    this.#readMaxBytes = readMaxBytes;
  }

  /**
   * Takes the next chunk of the request body. True once a second message is
   * complete: connect refuses the call there, without waiting for more.
   * Throws RESOURCE_EXHAUSTED for a length prefix over the limit.
   */
  push(chunk: Buffer): boolean {
    if (this.#second !== undefined) {
      return true; // refused already; whatever follows is not read
    }
    const pending = this.#pending;
    pending.push(chunk);
    for (;;) {
      if (this.#length < 0) {
        if (pending.length < 5) break;
        const head = pending.take(5);
        this.#flags = head[0]!;
        this.#length = head.readUInt32BE(1);
        if (this.#length > this.#readMaxBytes) {
          throw new ConnectError(
            `message size ${this.#length} is larger than the limit of ${this.#readMaxBytes} bytes (--max-message-size)`,
            Code.ResourceExhausted,
          );
        }
      }
      if (pending.length < this.#length) break;
      const data = pending.take(this.#length);
      this.#length = -1;
      if (this.#first === undefined) {
        this.#first = data;
        this.#firstFlags = this.#flags;
      } else {
        this.#second = data;
        this.#secondFlags = this.#flags;
        return true;
      }
    }
    return false;
  }

  /**
   * The request's message once the body has ended (or push returned true):
   * parsed, or the error connect answers with. Synchronous unless a message
   * is compressed (decompression is asynchronous).
   */
  message<T>(compression: Compression | null, parse: (data: Uint8Array) => T, memory?: CallMemory): MaybePromise<T> {
    const first = this.#first;
    const leftover = this.#pending.length > 0 || this.#length >= 0;
    if (first === undefined) {
      if (leftover) {
        throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
      }
      throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
    }
    const message = then(payload(this.#firstFlags, first, this.#readMaxBytes, compression, memory), parse);
    if (this.#second === undefined && !leftover) {
      return message; // the common case: nothing more to check
    }
    // The first message must parse, and the call is refused all the same;
    // connect also parses a second message before refusing it.
    const second = this.#second;
    return then(message, () => {
      if (second === undefined) {
        throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
      }
      return then(payload(this.#secondFlags, second, this.#readMaxBytes, compression, memory), (data): T => {
        parse(data);
        throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
      });
    });
  }
}

// connect's envelopeDecompress, minus its promise for uncompressed messages;
// decompressed bytes count against the call's memory where the compression
// can count them (transport/compression.ts).
function payload(
  flags: number,
  data: Uint8Array,
  readMaxBytes: number,
  compression: Compression | null,
  memory: CallMemory | undefined,
): MaybePromise<Uint8Array> {
  if ((flags & compressedFlag) === 0) {
    return data;
  }
  if (compression === null) {
    throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  }
  return "decompressCharged" in compression
    ? (compression as ChargedCompression).decompressCharged(data, readMaxBytes, memory)
    : compression.decompress(data, readMaxBytes);
}
