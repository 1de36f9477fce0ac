/**
 * Bytes received in chunks and taken in pieces of known length (frame
 * headers, messages), each copied at most once: a piece inside one chunk is
 * a view of it, a piece across chunks one copy. Concatenating everything
 * buffered with every new chunk instead made large messages quadratic
 * (60 MB took 125 s on the fast path).
 */
export class ByteQueue {
  #chunks: Buffer[] = [];
  #length = 0;

  /** Bytes buffered. */
  get length(): number {
    return this.#length;
  }

  push(chunk: Buffer): void {
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#length += chunk.length;
    }
  }

  /** The next `n` bytes (n <= length), removed from the queue. */
  take(n: number): Buffer {
    if (n === 0) return empty;
    this.#length -= n;
    const head = this.#chunks[0]!;
    if (head.length >= n) {
      if (head.length === n) this.#chunks.shift();
      else this.#chunks[0] = head.subarray(n);
      return head.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.#chunks[0]!;
      const part = Math.min(chunk.length, n - filled);
      chunk.copy(out, filled, 0, part);
      filled += part;
      if (part === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(part);
    }
    return out;
  }

  /** Everything buffered, removed from the queue (in the chunks it came in). */
  drain(): Buffer[] {
    const chunks = this.#chunks;
    this.#chunks = [];
    this.#length = 0;
    return chunks;
  }
}

const empty = Buffer.alloc(0);
