import { readFileSync } from "node:fs";
import { repoPath } from "./paths.js";

/** One Dockerfile instruction: its keyword (upper case) and the rest of its line. */
export interface DockerInstruction {
  readonly op: string;
  readonly args: string;
}

/** The Dockerfile's instructions, with line continuations joined and comments dropped. */
export function dockerfile(): DockerInstruction[] {
  return readFileSync(repoPath("Dockerfile"), "utf8")
    .replace(/\\\n\s*/g, " ")
    .split("\n")
    .filter((l) => l.trim() !== "" && !l.trim().startsWith("#"))
    .map((l) => {
      const [op, ...rest] = l.trim().split(/\s+/);
      return { op: op!.toUpperCase(), args: rest.join(" ") };
    });
}
