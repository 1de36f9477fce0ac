import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag, type Compression } from "@connectrpc/connect/protocol";
import { then, type MaybePromise } from "../maybe-promise.js";

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
  #pending: Buffer | undefined;
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
    let pending: Buffer | undefined = this.#pending === undefined ? chunk : Buffer.concat([this.#pending, chunk]);
    while (pending !== undefined && pending.length >= 5) {
      const length = pending.readUInt32BE(1);
      if (length > this.#readMaxBytes) {
        throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${this.#readMaxBytes}`, Code.ResourceExhausted);
      }
      if (pending.length < 5 + length) {
        break;
      }
      const data = pending.subarray(5, 5 + length);
      if (this.#first === undefined) {
        this.#first = data;
        this.#firstFlags = pending[0]!;
      } else if (this.#second === undefined) {
        this.#second = data;
        this.#secondFlags = pending[0]!;
      }
      pending = pending.length === 5 + length ? undefined : pending.subarray(5 + length);
    }
    this.#pending = pending;
    return this.#second !== undefined;
  }

  /**
   * The request's message once the body has ended (or push returned true):
   * parsed, or the error connect answers with. Synchronous unless a message
   * is compressed (decompression is asynchronous).
   */
  message<T>(compression: Compression | null, parse: (data: Uint8Array) => T): MaybePromise<T> {
    const first = this.#first;
    const leftover = this.#pending !== undefined && this.#pending.length > 0;
    if (first === undefined) {
      if (leftover) {
        throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
      }
      throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
    }
    const message = then(payload(this.#firstFlags, first, this.#readMaxBytes, compression), parse);
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
      return then(payload(this.#secondFlags, second, this.#readMaxBytes, compression), (data): T => {
        parse(data);
        throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
      });
    });
  }
}

// connect's envelopeDecompress, minus its promise for uncompressed messages.
function payload(flags: number, data: Uint8Array, readMaxBytes: number, compression: Compression | null): MaybePromise<Uint8Array> {
  if ((flags & compressedFlag) === 0) {
    return data;
  }
  if (compression === null) {
    throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  }
  return compression.decompress(data, readMaxBytes);
}
