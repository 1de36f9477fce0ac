/** A TCP host/port or a unix socket path to listen on. */
export type ListenAddress = { readonly kind: "tcp"; readonly host: string; readonly port: number } | { readonly kind: "unix"; readonly path: string };

/**
 * Parses a listen address in the forms Tyk's `coprocess_grpc_server` uses
 * (`tcp://host:port`, `unix:///abs/path.sock`) and the plain ones
 * (`host:port`, `[::1]:port`, `:port`).
 */
export function parseListenAddress(value: string): ListenAddress {
  if (value.startsWith("unix://")) {
    const path = value.slice("unix://".length);
    if (!path.startsWith("/")) {
      throw new Error(`invalid listen address "${value}": unix sockets need an absolute path, as in unix:///tmp/plugin.sock`);
    }
    return { kind: "unix", path };
  }
  const rest = value.startsWith("tcp://") ? value.slice("tcp://".length) : value;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]/]*)):(\d{1,5})$/.exec(rest);
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) {
    throw new Error(`invalid listen address "${value}": expected HOST:PORT, [IPV6]:PORT, tcp://HOST:PORT or unix:///PATH`);
  }
  return { kind: "tcp", host: m[1] ?? (m[2] || "::"), port };
}

/** Formats an address for logs and URLs: `127.0.0.1:50051`, `[::]:50051`, `unix:///x.sock`. */
export function formatListenAddress(address: ListenAddress): string {
  if (address.kind === "unix") {
    return `unix://${address.path}`;
  }
  return address.host.includes(":") ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

/**
 * The HOST:PORT a client on this machine dials to reach a TCP listen
 * address: a wildcard (`::`, `0.0.0.0`) is reached on 127.0.0.1.
 */
export function localDialAddress(address: Extract<ListenAddress, { kind: "tcp" }>): string {
  const host = address.host === "::" || address.host === "0.0.0.0" || address.host === "" ? "127.0.0.1" : address.host;
  return formatListenAddress({ kind: "tcp", host, port: address.port });
}

/**
 * Whether only this machine can reach the address: a unix socket, or a TCP
 * host on the loopback interface (127.0.0.0/8, ::1, localhost).
 */
export function isLoopbackAddress(address: ListenAddress): boolean {
  if (address.kind === "unix") {
    return true;
  }
  const host = address.host.toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) || /^::ffff:127\./.test(host);
}
