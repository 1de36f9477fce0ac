import { execFile } from "node:child_process";
import { bufBin, repoRoot } from "./paths.js";

/** What one `buf curl` run printed. */
export interface BufCurlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `buf curl --protocol grpc --http2-prior-knowledge ARGS` (without
 * prior knowledge for TLS: `h2c: false`) with no schema, so every call
 * resolves its types through server reflection.
 */
export function bufCurl(args: readonly string[], { h2c = true } = {}): Promise<BufCurlResult> {
  return new Promise((resolve) => {
    execFile(
      bufBin,
      ["curl", "--protocol", "grpc", ...(h2c ? ["--http2-prior-knowledge"] : []), ...args],
      { cwd: repoRoot, timeout: 30_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Parses buf curl's output: one pretty-printed JSON document per message. */
export function parseJsonDocuments(text: string): unknown[] {
  const docs: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{") {
      if (depth++ === 0) start = i;
    } else if (c === "}" && --depth === 0) {
      docs.push(JSON.parse(text.slice(start, i + 1)));
    }
  }
  return docs;
}
