import { readFileSync } from "node:fs";
import { repoPath } from "./paths.js";

/**
 * The node options `pnpm serve` runs the server with (package.json, the one
 * place they are written), so the benchmarks measure production settings.
 */
export function productionNodeArgs(): string[] {
  const pkg = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as { scripts: Record<string, string> };
  const m = /^exec node((?: --[\w-]+(?:=\S+)?)*) dist\/src\/main\.js$/.exec(pkg.scripts.serve ?? "");
  if (m === null) {
    throw new Error(`package.json "serve" is not "exec node [--options] dist/src/main.js": ${pkg.scripts.serve}`);
  }
  return m[1]!
    .trim()
    .split(" ")
    .filter((a) => a !== "");
}
