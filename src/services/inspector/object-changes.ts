import type { JsonValue } from "@bufbuild/protobuf";

/** One difference between the Object as received and the reply, at a path of proto3 JSON keys. */
export interface Change {
  readonly path: readonly string[];
  /** added: only in the reply; removed: only in the Object received; changed: in both, different. */
  readonly kind: "added" | "removed" | "changed";
}

/**
 * The differences between two proto3 JSON documents, leaf by leaf: objects
 * (messages and maps) are compared key by key, and a key present on one
 * side only is reported at each leaf beneath it, so that a header set in an
 * empty `setHeaders` reads as that header added. Arrays (repeated fields,
 * such as `deleteHeaders`) are compared whole.
 */
export function jsonChanges(before: JsonValue | undefined, after: JsonValue | undefined, path: string[] = [], out: Change[] = []): Change[] {
  if (isRecord(before) && isRecord(after)) {
    for (const key of Object.keys(before)) {
      jsonChanges(before[key], after[key], [...path, key], out);
    }
    for (const key of Object.keys(after)) {
      if (!(key in before)) jsonChanges(undefined, after[key], [...path, key], out);
    }
  } else if (before === undefined && isRecord(after)) {
    for (const key of Object.keys(after)) jsonChanges(undefined, after[key], [...path, key], out);
  } else if (after === undefined && isRecord(before)) {
    for (const key of Object.keys(before)) jsonChanges(before[key], undefined, [...path, key], out);
  } else if (before === undefined) {
    if (after !== undefined) out.push({ path, kind: "added" });
  } else if (after === undefined) {
    out.push({ path, kind: "removed" });
  } else if (!sameJson(before, after)) {
    out.push({ path, kind: "changed" });
  }
  return out;
}

function isRecord(value: JsonValue | undefined): value is { [key: string]: JsonValue } {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function sameJson(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The value at `path` in a JSON document; undefined when absent. */
export function valueAt(doc: JsonValue | undefined, path: readonly string[]): JsonValue | undefined {
  let value = doc;
  for (const key of path) {
    if (!isRecord(value)) return undefined;
    value = value[key];
  }
  return value;
}

// What the gateway does with each field of a reply, for the sentences below (paths of proto3 JSON names).
const mapLabels: Record<string, string> = {
  "request.setHeaders": "request header",
  "request.headers": "request header (the gateway applies setHeaders, not this map)",
  "request.addParams": "query parameter",
  "request.params": "query parameter (the gateway applies addParams, not this map)",
  "request.extendedParams": "extended query parameter",
  "request.returnOverrides.headers": "header of the early answer",
  "response.headers": "response header",
  metadata: "metadata",
  "session.metadata": "session metadata",
  spec: "spec entry",
};

const fieldLabels: Record<string, string> = {
  "request.url": "URL",
  "request.method": "method",
  "request.body": "body (text)",
  "request.rawBody": "body",
  "request.deleteHeaders": "deleted request headers",
  "request.deleteParams": "deleted query parameters",
  "request.returnOverrides.responseCode": "early answer status",
  "request.returnOverrides.responseError": "early answer error message",
  "request.returnOverrides.responseBody": "early answer body",
  "request.returnOverrides.overrideError": "early answer sent as is (override_error)",
  "response.statusCode": "response status",
  "response.body": "response body (text)",
  "response.rawBody": "response body",
  "response.multivalueHeaders": "response headers (multivalue)",
};

/**
 * The changes as sentences a plugin author reads at a glance ("request
 * header X-User set to "alice""), with values read from the shown (masked)
 * documents, so that a masked credential stays masked here too. Session
 * fields are summed up in one sentence.
 */
export function describeChanges(changes: readonly Change[], received: JsonValue, reply: JsonValue | null): string[] {
  const lines: string[] = [];
  const sessionFields: string[] = [];
  for (const change of changes) {
    const key = change.path.join(".");
    const parent = change.path.slice(0, -1).join(".");
    const name = change.path.at(-1) ?? "";
    const before = show(valueAt(received, change.path));
    const after = show(valueAt(reply ?? undefined, change.path));
    const mapLabel = mapLabels[parent];
    if (change.path[0] === "session" && parent !== "session.metadata") {
      sessionFields.push(change.path.slice(1).join("."));
    } else if (mapLabel !== undefined) {
      lines.push(
        change.kind === "added"
          ? `${mapLabel} ${name} set to ${after}`
          : change.kind === "removed"
            ? `${mapLabel} ${name} removed`
            : `${mapLabel} ${name}: ${before} → ${after}`,
      );
    } else if (key === "request.returnOverrides.responseCode" && before === "-1") {
      lines.push(`answers early with status ${after}: the upstream is not called`);
    } else if (key === "request.deleteHeaders" || key === "request.deleteParams") {
      const was = new Set(arrayOf(valueAt(received, change.path)));
      const added = arrayOf(valueAt(reply ?? undefined, change.path)).filter((v) => !was.has(v));
      lines.push(`${fieldLabels[key]}: ${added.length > 0 ? added.join(", ") : after}`);
    } else {
      const label = fieldLabels[key] ?? key;
      lines.push(change.kind === "added" ? `${label} set to ${after}` : change.kind === "removed" ? `${label} removed` : `${label}: ${before} → ${after}`);
    }
  }
  if (sessionFields.length > 0) {
    lines.push(`session ${valueAt(received, ["session"]) === undefined ? "created" : "changed"}: ${sessionFields.join(", ")}`);
  }
  return lines;
}

function arrayOf(value: JsonValue | undefined): string[] {
  return Array.isArray(value) ? value.map((v) => String(v)) : [];
}

// A value in a sentence: short, on one line.
function show(value: JsonValue | undefined): string {
  const text = JSON.stringify(value) ?? "nothing";
  return text.length > 80 ? `${text.slice(0, 77)}…` : text;
}
