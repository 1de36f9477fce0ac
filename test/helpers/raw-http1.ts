import * as net from "node:net";

/** What a raw HTTP/1.x exchange got back. */
export interface RawHttp1Response {
  /** The status code of the first response, if one arrived. */
  readonly status: number | undefined;
  /** Everything the server sent, as text. */
  readonly text: string;
  /** Whether the server closed the connection within the wait. */
  readonly closed: boolean;
}

/**
 * Sends `request` exactly as given (no HTTP library in between, so a
 * malformed request line or Host goes out as written) and collects what
 * comes back until the server closes the connection or `waitMs` passes.
 */
export function rawHttp1(address: string, request: string | Buffer, waitMs = 10_000): Promise<RawHttp1Response> {
  const [host, port] = splitAddress(address);
  return new Promise((resolve) => {
    const socket = net.connect(port, host);
    const chunks: Buffer[] = [];
    let closed = false;
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1];
      resolve({ status: status === undefined ? undefined : Number(status), text, closed });
    };
    const timer = setTimeout(done, waitMs);
    socket.on("data", (d: Buffer) => chunks.push(d));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      closed = true;
      done();
    });
    socket.write(request);
  });
}

/** "127.0.0.1:8080" or "[::1]:8080" as host and port. */
export function splitAddress(address: string): [string, number] {
  const at = address.lastIndexOf(":");
  return [address.slice(0, at).replace(/^\[|\]$/g, ""), Number(address.slice(at + 1))];
}
