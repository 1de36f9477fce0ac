import { AsyncLocalStorage } from "node:async_hooks";
import { Code, ConnectError } from "@connectrpc/connect";

/** How much memory requests and replies may hold. */
export interface MemoryBudgetLimits {
  /** Bytes all connections together may hold. */
  readonly processBytes: number;
  /** Bytes one connection may hold. */
  readonly connectionBytes: number;
}

const mib = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MiB`;

/**
 * The memory the process holds for callers: request bytes as received,
 * decompressed request messages, and replies not yet sent. Why: the limit
 * on one message (--max-message-size) says nothing about how many a client
 * can make the server hold at once. 80 brotli requests of 111 bytes each
 * (63 MiB each once decompressed) from a client that never read its
 * replies took 6 GB; 100 gzip Dispatch calls of 16.7 KB, 3.4 GB. Bytes
 * that would take their connection or the process past its budget are
 * refused with RESOURCE_EXHAUSTED as they arrive or are made (decompression
 * stops there; a reply is replaced by the refusal), so a client that does
 * not read soon has its further calls refused, and other connections keep
 * their share.
 */
export class MemoryBudget {
  readonly limits: MemoryBudgetLimits;
  #held = 0;

  constructor(limits: MemoryBudgetLimits) {
    this.limits = limits;
  }

  /** Bytes held now, all connections together. */
  get held(): number {
    return this.#held;
  }

  /** The account of a new connection. */
  connection(): ConnectionMemory {
    return new ConnectionMemory(this);
  }

  /** @internal */
  adjust(n: number): void {
    this.#held += n;
  }
}

/** What one connection holds, against its budget and the process's. */
export class ConnectionMemory {
  readonly #budget: MemoryBudget;
  #held = 0;

  constructor(budget: MemoryBudget) {
    this.#budget = budget;
  }

  /** Bytes this connection holds now. */
  get held(): number {
    return this.#held;
  }

  /** The account of a call on this connection. */
  call(): CallMemory {
    return new CallMemory(this);
  }

  /** Why `n` more bytes do not fit, or undefined when they do. */
  refusal(n: number): string | undefined {
    const { processBytes, connectionBytes } = this.#budget.limits;
    if (this.#held + n > connectionBytes) {
      return `server memory budget: this connection holds ${mib(this.#held)} of requests and unsent replies, ${mib(connectionBytes)} allowed`;
    }
    if (this.#budget.held + n > processBytes) {
      return `server memory budget: the server holds ${mib(this.#budget.held)} of requests and unsent replies, ${mib(processBytes)} allowed`;
    }
    return undefined;
  }

  /** @internal */
  adjust(n: number): void {
    this.#held += n;
    this.#budget.adjust(n);
  }
}

/**
 * What one call holds: request and reply bytes taken against the budget
 * (or refused), given back as replies are sent and when the call ends.
 */
export class CallMemory {
  readonly #connection: ConnectionMemory;
  #held = 0;

  constructor(connection: ConnectionMemory) {
    this.#connection = connection;
  }

  /** Takes `n` bytes, or throws RESOURCE_EXHAUSTED saying whose budget they do not fit. */
  take(n: number): void {
    const refusal = this.#connection.refusal(n);
    if (refusal !== undefined) {
      throw new ConnectError(refusal, Code.ResourceExhausted);
    }
    this.#held += n;
    this.#connection.adjust(n);
  }

  /** Gives back `n` bytes (a reply chunk that has been sent). */
  release(n: number): void {
    const back = Math.min(n, this.#held);
    this.#held -= back;
    this.#connection.adjust(-back);
  }

  /** Gives back everything (the call has ended). */
  releaseAll(): void {
    this.release(this.#held);
  }
}

const callMemory = new AsyncLocalStorage<CallMemory>();

/** Runs `fn` (connect's handling of one request) with `memory` as the call's account, for code that has no other way to find it (decompression). */
export function runWithCallMemory<A extends unknown[], T>(memory: CallMemory, fn: (...args: A) => T, ...args: A): T {
  return callMemory.run(memory, fn, ...args);
}

/** The account of the call running now, on connect's path; undefined elsewhere (in-process clients). */
export function currentCallMemory(): CallMemory | undefined {
  return callMemory.getStore();
}
