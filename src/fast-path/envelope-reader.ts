import type { ServerHttp2Stream } from "node:http2";
import { Code, ConnectError } from "@connectrpc/connect";
import { compressedFlag, type Compression } from "@connectrpc/connect/protocol";
import { then, type MaybePromise } from "../maybe-promise.js";

/** One gRPC length-prefixed message as received: flags byte and payload. */
interface Envelope {
  readonly flags: number;
  readonly data: Uint8Array;
}

/**
 * Reads the single request message of a unary call from an HTTP/2 stream,
 * with the checks and error statuses of connect's gRPC handler, in the same
 * order: an oversize length prefix fails as soon as it arrives; then the
 * first message is decompressed and parsed; a second message is parsed and
 * refused; leftover bytes are an incomplete envelope; no message at all is
 * a missing input. Resolves with the parsed message.
 *
 * One difference, in timing only: connect parses the first message as soon
 * as it is complete, this waits for the end of the request (or a second
 * message), so a client that never half-closes hears nothing until its
 * deadline or cancel, where connect would answer a malformed first message
 * early. No unary client behaves that way.
 */
export function readUnaryRequest<T>(
  stream: ServerHttp2Stream,
  readMaxBytes: number,
  compression: Compression | null,
  parse: (data: Uint8Array) => T,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const envelopes: Envelope[] = [];
    let pending: Buffer | undefined;
    const onData = (chunk: Buffer) => {
      pending = pending === undefined ? chunk : Buffer.concat([pending, chunk]);
      try {
        while (pending !== undefined && pending.length >= 5) {
          const length = pending.readUInt32BE(1);
          if (length > readMaxBytes) {
            throw new ConnectError(`message size ${length} is larger than configured readMaxBytes ${readMaxBytes}`, Code.ResourceExhausted);
          }
          if (pending.length < 5 + length) {
            break;
          }
          envelopes.push({ flags: pending[0]!, data: pending.subarray(5, 5 + length) });
          pending = pending.length === 5 + length ? undefined : pending.subarray(5 + length);
        }
      } catch (e) {
        stop();
        reject(e);
        return;
      }
      if (envelopes.length >= 2) {
        // connect refuses the call at the second message, without waiting for more.
        finish();
      }
    };
    const onEnd = () => finish();
    const onClose = () => {
      // Reset or closed before the request ended: nobody is left to answer.
      stop();
      reject(new ConnectError("request stream closed before its end", Code.Canceled));
    };
    const stop = () => {
      stream.off("data", onData);
      stream.off("end", onEnd);
      stream.off("close", onClose);
    };
    const finish = () => {
      stop();
      const leftover = pending !== undefined && pending.length > 0;
      try {
        resolve(decode(envelopes, leftover, readMaxBytes, compression, parse)); // (a promise is adopted)
      } catch (e) {
        reject(e);
      }
    };
    if (stream.readableEnded) {
      // A request with no body at all (END_STREAM on its headers): node has
      // already emitted "end".
      finish();
      return;
    }
    stream.on("data", onData);
    stream.once("end", onEnd);
    stream.once("close", onClose);
  });
}

// Synchronous unless a message is compressed (decompression is asynchronous).
function decode<T>(
  envelopes: readonly Envelope[],
  leftover: boolean,
  readMaxBytes: number,
  compression: Compression | null,
  parse: (data: Uint8Array) => T,
): MaybePromise<T> {
  const [first, second] = envelopes;
  if (first === undefined) {
    if (leftover) {
      throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    throw new ConnectError("protocol error: missing input message for unary method", Code.Unimplemented);
  }
  const check = (message: T): MaybePromise<T> => {
    if (second !== undefined) {
      return then(payload(second, readMaxBytes, compression), (data) => {
        parse(data);
        throw new ConnectError("protocol error: received extra input message for unary method", Code.Unimplemented);
      });
    }
    if (leftover) {
      throw new ConnectError("protocol error: incomplete envelope", Code.InvalidArgument);
    }
    return message;
  };
  return then(then(payload(first, readMaxBytes, compression), parse), check);
}

// connect's envelopeDecompress, minus its promise for uncompressed messages.
function payload(env: Envelope, readMaxBytes: number, compression: Compression | null): MaybePromise<Uint8Array> {
  if ((env.flags & compressedFlag) === 0) {
    return env.data;
  }
  if (compression === null) {
    throw new ConnectError("received compressed envelope, but do not know how to decompress", Code.Internal);
  }
  return compression.decompress(env.data, readMaxBytes);
}
