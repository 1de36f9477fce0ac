const unitsMs: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration such as `10s`, `500ms`, `1.5m` or a bare number of
 * seconds into milliseconds. `what` names the setting in the error message.
 */
export function parseDuration(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value.trim());
  if (!m) {
    throw new Error(`invalid ${what} "${value}": expected a duration such as 10s, 500ms or 2m`);
  }
  return Math.round(Number(m[1]) * unitsMs[m[2] ?? "s"]!);
}

/** Formats milliseconds the way parseDuration reads them, in the largest whole unit: 600000 is "10m", 0 is "0". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0";
  const unit = (["h", "m", "s"] as const).find((u) => ms % unitsMs[u]! === 0);
  return unit === undefined ? `${ms}ms` : `${ms / unitsMs[unit]!}${unit}`;
}
