/**
 * Lets one reader see every log line as it is written (the call inspector,
 * which shows each call's lines), in the context of the code that wrote it.
 * Without a reader a line costs one check more.
 */
export class LogTap {
  #reader: ((line: string) => void) | undefined;

  /** Hands every line from now on to `reader` (replacing any earlier one); undefined stops it. */
  read(reader: ((line: string) => void) | undefined): void {
    this.#reader = reader;
  }

  /** pino's streamWrite hook: passes the line on unchanged. */
  readonly write = (line: string): string => {
    this.#reader?.(line);
    return line;
  };
}
