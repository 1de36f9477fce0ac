import type { Socket } from "node:net";
import type { RepeatLimitedLog } from "../observability/repeated-lines.js";

/**
 * The open connections of a group of listeners, with a cap. Why a cap: every
 * connection holds a file descriptor, and a client that opens them without
 * ever finishing a request (slowloris) reached the process's limit, after
 * which new gRPC connections were reset and health checks went unanswered.
 * Why evict: at the cap, a new connection closes the oldest connection that
 * has not yet completed a single call or request (a slowloris connection
 * never does), so real clients, a health probe among them, still get in;
 * only when every open connection has been served is the new one refused.
 * Both are logged (rate-limited).
 */
export class ConnectionTable {
  readonly #max: number;
  readonly #name: string;
  readonly #repeats: RepeatLimitedLog;
  readonly #peerOf: (socket: Socket) => string | undefined;
  readonly #open = new Set<Socket>();
  // Connections not yet served, oldest first (a Set iterates in insertion order).
  readonly #unserved = new Set<Socket>();

  constructor(name: string, max: number, repeats: RepeatLimitedLog, peerOf: (socket: Socket) => string | undefined) {
    this.#name = name;
    this.#max = max;
    this.#repeats = repeats;
    this.#peerOf = peerOf;
  }

  /** Open connections now. */
  get size(): number {
    return this.#open.size;
  }

  /** Every open connection (for a forced shutdown). */
  sockets(): IterableIterator<Socket> {
    return this.#open.values();
  }

  /**
   * A connection just accepted: true when it may be served. At the cap, the
   * oldest connection not yet served is closed to make room; false when
   * there is none (the new connection has been destroyed).
   */
  admit(socket: Socket): boolean {
    if (this.#open.size >= this.#max) {
      const oldest = this.#unserved.values().next();
      if (oldest.done) {
        this.#repeats.warn(
          `connection refused|${this.#name}`,
          { listeners: this.#name, maxConnections: this.#max, peer: this.#peerOf(socket) },
          "connection limit reached: refusing a new connection (every open one has been served)",
        );
        socket.destroy();
        return false;
      }
      this.#repeats.warn(
        `connection evicted|${this.#name}`,
        { listeners: this.#name, maxConnections: this.#max, closed: this.#peerOf(oldest.value) },
        "connection limit reached: closing the oldest connection that has completed no request",
      );
      this.#forget(oldest.value);
      oldest.value.destroy();
    }
    this.#open.add(socket);
    this.#unserved.add(socket);
    socket.once("close", () => this.#forget(socket));
    return true;
  }

  /** The connection has completed a call or request: it is no longer the first to be closed at the cap. */
  served(socket: Socket): void {
    this.#unserved.delete(socket);
  }

  #forget(socket: Socket): void {
    this.#open.delete(socket);
    this.#unserved.delete(socket);
  }
}
