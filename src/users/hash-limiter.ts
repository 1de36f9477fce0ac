import { Code, ConnectError } from "@connectrpc/connect";

/**
 * Bounds the password hashes running at once. scrypt runs on libuv's thread
 * pool (4 threads by default), which zlib (gzip and brotli calls) and file
 * access share: 3,000 unbounded CreateUser calls made other clients' gzip
 * calls wait 29-32 s. With at most `concurrency` hashes at a time the pool
 * keeps threads for everyone else; beyond `maxWaiting` queued hashes a call
 * gets RESOURCE_EXHAUSTED at once rather than a place in an ever longer queue.
 */
export class HashLimiter {
  readonly #concurrency: number;
  readonly #maxWaiting: number;
  #running = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(concurrency = 2, maxWaiting = 64) {
    this.#concurrency = concurrency;
    this.#maxWaiting = maxWaiting;
  }

  /** Runs `hash` once a place is free; a call whose signal aborts while it waits leaves the queue. */
  async run<T>(signal: AbortSignal, hash: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#maxWaiting) {
        throw new ConnectError("too many password hashes in progress: try again later", Code.ResourceExhausted);
      }
      await new Promise<void>((resolve, reject) => {
        const go = () => {
          signal.removeEventListener("abort", leave);
          resolve();
        };
        const leave = () => {
          this.#waiting.splice(this.#waiting.indexOf(go), 1);
          reject(ConnectError.from(signal.reason));
        };
        this.#waiting.push(go);
        signal.addEventListener("abort", leave, { once: true });
      });
    }
    this.#running++;
    try {
      return await hash();
    } finally {
      this.#running--;
      this.#waiting.shift()?.();
    }
  }
}
