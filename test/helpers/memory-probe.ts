import { getHeapStatistics } from "node:v8";

// Preloaded into a server process under test (`--import`, with an IPC
// channel): answers "memory" messages with the process's memory figures,
// after a full garbage collection when the process runs with --expose-gc.
// Test and benchmark code only; the server itself knows nothing of it.

/** The figures a memory probe reports, in bytes. */
export interface MemoryFigures {
  readonly rss: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
  readonly totalHeapSize: number;
  readonly gcForced: boolean;
}

process.on("message", (message: unknown) => {
  if (message !== "memory") return;
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const usage = process.memoryUsage();
  const figures: MemoryFigures = { ...usage, totalHeapSize: getHeapStatistics().total_heap_size, gcForced: gc !== undefined };
  process.send?.({ memory: figures });
});
// The IPC channel must not keep the server alive once it wants to exit.
process.channel?.unref();
