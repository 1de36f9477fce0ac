import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { fuzzCases } from "../fuzz/cases.js";
import { driveFuzz, type FuzzReport } from "../fuzz/drive.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";

// Mutated Dispatch requests over the wire, with valid ones in between.
// FUZZ_CALLS and FUZZ_SEED make longer or different runs (`pnpm fuzz`); the
// seed is printed, and the same seed sends exactly the same requests.

const calls = Number(process.env.FUZZ_CALLS ?? 10_000);
const seed = Number(process.env.FUZZ_SEED ?? 20261121);

const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);

describe("fuzzed Dispatch requests", () => {
  it(`${calls} calls (seed ${seed}): every one answered with a gRPC status, valid ones served, the server stays up and its memory settles`, async (t) => {
    const server = await startServerProcess(["--log-level", "info"], { memoryProbe: true, nodeArgs: ["--expose-gc"] });
    try {
      const pid = server.child.pid!;
      // Warm-up with another seed: the first error of each kind compiles
      // code and fills caches, which is growth but not a leak.
      const warm = await driveFuzz(server.baseUrl, fuzzCases(seed + 1, 2000), { connections: 2, concurrency: 16 });
      assert.deepEqual(warm.failures, []);
      const before = await server.memory();

      const report = await driveFuzz(server.baseUrl, fuzzCases(seed, calls), { connections: 2, concurrency: 16 });
      const peak = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]) / 1024;
      const cooled = await driveFuzz(server.baseUrl, validOnly(2000), { connections: 2, concurrency: 16 });
      assert.deepEqual(cooled.failures, [], "valid calls after the fuzzing still served");
      const after = await server.memory();

      t.diagnostic(`seed ${seed}: ${report.calls} calls; by status ${JSON.stringify(report.byStatus)}`);
      t.diagnostic(`by kind ${JSON.stringify(report.byKind)}`);
      t.diagnostic(
        `after a full GC: heap used ${mib(before.heapUsed)} MiB before, ${mib(after.heapUsed)} after; ` +
          `RSS ${mib(before.rss)} before, peak ${peak.toFixed(1)}, ${mib(after.rss)} after`,
      );
      assert.equal(report.calls, calls);
      assert.deepEqual(report.failures.slice(0, 10), [], `${report.failures.length} failures`);
      assert.ok(Object.keys(report.byStatus).length > 3, "the mutations reach several different errors");
      assert.equal(server.child.exitCode, null, "still running");

      // Every refused or failed call left a log line (warn: "rpc failed" /
      // "rpc refused"), or was counted in a "rpc refused" line's `repeated`:
      // refusals are rate-limited per kind, and the last counts are written
      // when the server stops.
      assert.equal(await server.stop(), 0);
      assert.equal(loggedFailures(server), failedCalls(warm) + failedCalls(report));

      // Nothing the calls made outlives them: the heap returns to its size
      // before (RSS stays higher for a while: V8 gives freed pages back to
      // the system lazily, measured about 20 s later, and not all of them).
      assert.ok(after.heapUsed - before.heapUsed < 2 * 2 ** 20, `heap used grew by ${mib(after.heapUsed - before.heapUsed)} MiB`);
      assert.ok(after.rss - before.rss < 128 * 2 ** 20, `RSS grew by ${mib(after.rss - before.rss)} MiB`);
    } finally {
      assert.equal(await server.stop(), 0);
    }
  });
});

const failedCalls = (r: FuzzReport) => Object.entries(r.byStatus).reduce((n, [code, count]) => (code === "0" ? n : n + count), 0);

/** The failed calls the log accounts for: a line each, or a summary line's count of the repeats it stands for. */
function loggedFailures(server: ServerProcess): number {
  return server.lines.reduce((n, l) => (l.msg === "rpc failed" || l.msg === "rpc refused" ? n + (Number(l.repeated) || 1) : n), 0);
}

function* validOnly(n: number) {
  for (const c of fuzzCases(1, n * 8)) {
    if (c.kind === "valid") yield c;
  }
}
