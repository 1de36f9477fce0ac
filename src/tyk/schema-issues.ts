import type { StandardSchemaV1 } from "@standard-schema/spec";

/** A Standard Schema's issues as one line: `keys.demo.rate: Invalid type; header: Required`. */
export function issuesText(issues: readonly StandardSchemaV1.Issue[]): string {
  return issues.map((issue) => `${pathText(issue.path)}: ${issue.message}`).join("; ");
}

function pathText(path: StandardSchemaV1.Issue["path"]): string {
  if (path === undefined || path.length === 0) {
    return "(the whole value)";
  }
  return path
    .map((segment) => (typeof segment === "object" ? segment.key : segment))
    .map((key, i) => (typeof key === "number" ? `[${key}]` : `${i === 0 ? "" : "."}${String(key)}`))
    .join("");
}
