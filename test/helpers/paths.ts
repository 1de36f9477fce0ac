import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests run from dist/test/, two levels below). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Absolute path of a file in the repository. */
export function repoPath(...parts: string[]): string {
  return join(repoRoot, ...parts);
}

/** The buf binary installed from npm. */
export const bufBin = repoPath("node_modules", ".bin", "buf");
