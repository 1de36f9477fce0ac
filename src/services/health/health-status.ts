import { HealthCheckResponse_ServingStatus as ServingStatus } from "../../../gen/grpc/health/v1/health_pb.js";

export { ServingStatus };

/**
 * The serving status of the server ("") and of each service, with change
 * notification for Watch. `shutdown()` flips everything to NOT_SERVING and
 * ends every watch, so health streams never hold up a graceful drain.
 */
export class HealthStatus {
  readonly #statuses = new Map<string, ServingStatus>();
  readonly #listeners = new Set<() => void>();
  #closed = false;

  /** Registers services (and "" for the whole server) with one status. */
  constructor(services: Iterable<string>, status: ServingStatus = ServingStatus.SERVING) {
    for (const name of ["", ...services]) {
      this.#statuses.set(name, status);
    }
  }

  /** The status of a service, or undefined when it is not known. */
  get(service: string): ServingStatus | undefined {
    return this.#statuses.get(service);
  }

  /** Every known service and its status. */
  list(): ReadonlyMap<string, ServingStatus> {
    return this.#statuses;
  }

  /** Sets a service's status and tells the watchers. */
  set(service: string, status: ServingStatus): void {
    if (this.#statuses.get(service) !== status) {
      this.#statuses.set(service, status);
      this.#notify();
    }
  }

  /** Marks every service NOT_SERVING, then ends all watches. */
  shutdown(): void {
    for (const service of this.#statuses.keys()) {
      this.#statuses.set(service, ServingStatus.NOT_SERVING);
    }
    this.#closed = true;
    this.#notify();
  }

  /**
   * The current status of `service` (SERVICE_UNKNOWN if it is not known),
   * then each change, until `signal` aborts or shutdown() was called.
   */
  async *watch(service: string, signal: AbortSignal): AsyncGenerator<ServingStatus> {
    let wake: (() => void) | undefined;
    const listener = () => wake?.();
    this.#listeners.add(listener);
    signal.addEventListener("abort", listener);
    try {
      let last: ServingStatus | undefined;
      for (;;) {
        const current = this.get(service) ?? ServingStatus.SERVICE_UNKNOWN;
        if (current !== last) {
          last = current;
          yield current;
          // Look again: a change (or shutdown) may have come while we were
          // suspended at the yield, when no wake-up was waiting.
          continue;
        }
        if (this.#closed || signal.aborted) {
          return;
        }
        // From reading the status to here nothing awaits, so no change can slip in between.
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      this.#listeners.delete(listener);
      signal.removeEventListener("abort", listener);
    }
  }

  #notify(): void {
    for (const listener of this.#listeners) {
      listener();
    }
  }
}
