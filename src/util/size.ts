const sizeUnits: Record<string, number> = { "": 1, b: 1, kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3 };

/** Parses a byte size such as 4194304, 512KiB or 64MiB (1 byte to 4GiB-1: connect-node's per-message limit cannot exceed 0xffffffff). */
export function parseSize(value: string): number {
  const m = /^(\d+)\s*([a-z]*)$/i.exec(value.trim());
  const unit = m ? sizeUnits[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) {
    throw new Error(`invalid size "${value}": expected bytes, or a number with KiB/MiB/GiB`);
  }
  const bytes = Number(m[1]) * unit;
  if (bytes < 1 || bytes > 0xffffffff) {
    throw new Error(`invalid size "${value}": must be between 1 byte and 4GiB-1`);
  }
  return bytes;
}

/** Formats bytes the way parseSize reads them, in the largest whole unit: 65536 is "64KiB". */
export function formatSize(bytes: number): string {
  const unit = (["GiB", "MiB", "KiB"] as const).find((u) => bytes % sizeUnits[u.toLowerCase()]! === 0);
  return unit === undefined ? String(bytes) : `${bytes / sizeUnits[unit.toLowerCase()]!}${unit}`;
}
