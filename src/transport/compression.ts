import * as zlib from "node:zlib";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Compression } from "@connectrpc/connect/protocol";
import { compressionBrotli, compressionGzip } from "@connectrpc/connect-node";
import { type CallMemory, currentCallMemory } from "./memory-budget.js";

/** A request compression whose decompressed bytes count against a call's memory budget. */
export interface ChargedCompression extends Compression {
  /**
   * As `decompress`, with every piece of output taken from `memory` as it
   * is produced: decompression stops (RESOURCE_EXHAUSTED) as soon as the
   * output no longer fits, not once it is all in memory.
   */
  decompressCharged(bytes: Uint8Array, readMaxBytes: number, memory: CallMemory | undefined): Promise<Uint8Array<ArrayBuffer>>;
}

/**
 * gzip and brotli as connect-node has them (the same compression, the same
 * errors for the caller), with decompression counted against the memory
 * budget. Connect's path finds the call's account in its async context;
 * the fast path passes its own.
 */
export const compressions: readonly ChargedCompression[] = [
  charged(compressionGzip, zlib.createGunzip),
  charged(compressionBrotli, zlib.createBrotliDecompress),
];

function charged(base: Compression, decompressor: () => zlib.Gunzip | zlib.BrotliDecompress): ChargedCompression {
  const decompressCharged = (bytes: Uint8Array, readMaxBytes: number, memory: CallMemory | undefined) => inflate(decompressor(), bytes, readMaxBytes, memory);
  return {
    name: base.name,
    compress: (bytes) => base.compress(bytes),
    decompress: (bytes, readMaxBytes) => decompressCharged(bytes, readMaxBytes, currentCallMemory()),
    decompressCharged,
  };
}

function inflate(
  engine: zlib.Gunzip | zlib.BrotliDecompress,
  bytes: Uint8Array,
  readMaxBytes: number,
  memory: CallMemory | undefined,
): Promise<Uint8Array<ArrayBuffer>> {
  if (bytes.length === 0) {
    return Promise.resolve(new Uint8Array(0));
  }
  return new Promise((resolve, reject) => {
    let chunks: Buffer[] = [];
    let total = 0;
    let charged = 0;
    // A refused message is garbage at once: nothing of it stays reachable
    // or counted while the refusal waits to be sent.
    const fail = (error: ConnectError) => {
      engine.removeAllListeners("data");
      engine.destroy();
      chunks = [];
      memory?.release(charged);
      reject(error);
    };
    engine.on("data", (chunk: Buffer) => {
      total += chunk.length;
      if (total > readMaxBytes) {
        return fail(new ConnectError(`message is larger than configured readMaxBytes ${readMaxBytes} after decompression`, Code.ResourceExhausted));
      }
      try {
        memory?.take(chunk.length);
      } catch (e) {
        return fail(e as ConnectError);
      }
      charged += chunk.length;
      chunks.push(chunk);
    });
    engine.on("end", () => {
      const out = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, total);
      chunks = [];
      // (zlib's output is never in a SharedArrayBuffer)
      resolve(new Uint8Array(out.buffer as ArrayBuffer, out.byteOffset, out.byteLength));
    });
    engine.on("error", (e: NodeJS.ErrnoException) => fail(zlibError(e)));
    engine.end(bytes);
  });
}

// connect-node's mapping of zlib's errors, so that callers see the same statuses.
function zlibError(e: NodeJS.ErrnoException): ConnectError {
  const code = e.code === "Z_DATA_ERROR" || e.code === "ERR_PADDING_2" || e.code?.startsWith("ERR__ERROR_FORMAT_") ? Code.InvalidArgument : Code.Internal;
  return new ConnectError("decompression failed", code, undefined, undefined, e);
}
