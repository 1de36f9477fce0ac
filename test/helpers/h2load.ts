import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** What one h2load run measured. */
export interface H2loadResult {
  readonly requests: number;
  readonly succeeded: number;
  readonly reqPerSec: number;
  /** Response DATA bytes received in total (gRPC frames). */
  readonly dataBytes: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

/** Exits with instructions when h2load is not installed. */
export function requireH2load(): void {
  try {
    execFileSync("h2load", ["--version"], { stdio: "ignore" });
  } catch {
    process.stderr.write("h2load not found. Install it with: apt-get install -y nghttp2-client\n");
    process.exit(2);
  }
}

/**
 * Drives one gRPC unary method with h2load: `requests` calls over `clients`
 * connections with `streams` concurrent streams each, all sending `body` (a
 * framed gRPC message). Latency percentiles come from h2load's per-request log.
 * With `timeoutMs`, h2load is killed after that long (and the run fails).
 */
export function runH2load(url: string, body: Uint8Array, requests: number, clients: number, streams: number, timeoutMs = 0): Promise<H2loadResult> {
  const dir = mkdtempSync(join(tmpdir(), "h2load-"));
  const bodyFile = join(dir, "body.bin");
  const logFile = join(dir, "requests.log");
  writeFileSync(bodyFile, body);
  const args = [
    "-n",
    String(requests),
    "-c",
    String(clients),
    "-m",
    String(streams),
    "-t",
    "1",
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    "-d",
    bodyFile,
    `--log-file=${logFile}`,
    url,
  ];
  return new Promise((resolve, reject) => {
    execFile("h2load", args, { maxBuffer: 16 * 1024 * 1024, timeout: timeoutMs }, (err, stdout) => {
      try {
        if (err) {
          throw new Error(`h2load failed: ${err.message}\n${stdout}`);
        }
        const num = (re: RegExp) => {
          const m = re.exec(stdout);
          if (!m) throw new Error(`unexpected h2load output (no ${re}):\n${stdout}`);
          return Number(m[1]);
        };
        const durations = readFileSync(logFile, "utf8")
          .trim()
          .split("\n")
          .map((line) => Number(line.split("\t")[2]) / 1000)
          .sort((a, b) => a - b);
        const pct = (p: number) => durations[Math.min(durations.length - 1, Math.floor((p / 100) * durations.length))] ?? NaN;
        resolve({
          requests,
          succeeded: num(/(\d+) succeeded/),
          reqPerSec: num(/finished in [\d.]+\w+, ([\d.]+) req\/s/),
          dataBytes: num(/\((\d+)\) data/),
          p50Ms: pct(50),
          p99Ms: pct(99),
        });
      } catch (e) {
        reject(e);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
