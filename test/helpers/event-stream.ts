import * as http from "node:http";

/** One server-sent event. */
export interface StreamEvent {
  readonly event: string;
  readonly data: string;
}

/** A server-sent event stream read over a real socket. */
export interface EventStreamClient {
  readonly status: number;
  /** Every event so far. */
  readonly events: StreamEvent[];
  /** Resolves with the first event (past or future) of this type for which `pred` holds. */
  next(event: string, pred?: (data: unknown) => boolean, timeoutMs?: number): Promise<unknown>;
  close(): void;
}

/**
 * Opens `url` as an event stream (node:http, no EventSource library) and
 * parses events as they arrive: `event:` and `data:` lines, ended by a blank line.
 */
export function openEventStream(url: string, headers: Record<string, string> = {}): Promise<EventStreamClient> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers: { accept: "text/event-stream", ...headers } }, (res) => {
      const events: StreamEvent[] = [];
      const waiters = new Set<() => void>();
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = "message";
          const data: string[] = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event: ")) event = line.slice(7);
            else if (line.startsWith("data: ")) data.push(line.slice(6));
          }
          if (data.length > 0) events.push({ event, data: data.join("\n") });
        }
        waiters.forEach((w) => w());
      });
      res.on("error", () => undefined);
      resolve({
        status: res.statusCode ?? 0,
        events,
        next(event, pred = () => true, timeoutMs = 20_000) {
          return new Promise((done, fail) => {
            const check = () => {
              for (const e of events) {
                if (e.event !== event) continue;
                const data = JSON.parse(e.data) as unknown;
                if (pred(data)) {
                  waiters.delete(check);
                  clearTimeout(timer);
                  done(data);
                  return;
                }
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              fail(new Error(`no "${event}" event matched within ${timeoutMs} ms; got ${events.map((e) => e.event).join(", ") || "none"}`));
            }, timeoutMs);
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
  });
}
