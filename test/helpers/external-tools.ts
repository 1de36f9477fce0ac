import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";

/**
 * An external client the tests drive (grpcurl, a Python with grpcio): its
 * path, or why it is missing. `.ci/run` installs them and sets the variables,
 * so in CI (CI=true) a missing tool fails the suite instead of skipping it.
 */
export function externalTool(name: string, envVar: string, fallback: string[]): { path: string } | { skip: string } {
  const candidates = [process.env[envVar], ...fallback].filter((c): c is string => c !== undefined && c !== "");
  for (const candidate of candidates) {
    if (candidate.includes("/") ? existsSync(candidate) : onPath(candidate)) return { path: candidate };
  }
  const why = `${name} not found (set ${envVar}; .ci/run installs it)`;
  if (process.env.CI === "true") {
    throw new Error(`CI runs these tests always: ${why}`);
  }
  return { skip: why };
}

function onPath(command: string): boolean {
  try {
    execFileSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
}
