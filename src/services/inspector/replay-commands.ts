import type { JsonValue } from "@bufbuild/protobuf";
import { redacted } from "../../rpc/metadata.js";
import { type ListenAddress, localDialAddress } from "../../transport/listen-address.js";

/** Shell commands that send an Object again, to this server's gRPC listener. */
export interface ReplayCommands {
  /** grpcurl, through reflection (no proto files needed). */
  readonly grpcurl: string;
  /** This repository's client: `pnpm client dispatch`. */
  readonly client: string;
  /** What the reader must know before running them (masked credentials). */
  readonly warning: string | null;
}

/** Where replays are sent: the server's first plaintext TCP address, else a unix socket, else a TLS address. */
export interface ReplayTarget {
  readonly plaintext: readonly ListenAddress[];
  readonly tls: readonly ListenAddress[];
}

/**
 * The replay commands of an Object (proto3 JSON, as shown), or why there
 * are none. The Object goes in a quoted here-document: the shell changes
 * nothing in it, and single-line JSON never holds the terminator line.
 */
export function replayCommands(object: JsonValue, target: ReplayTarget, cut: boolean): ReplayCommands | { unavailable: string } {
  if (cut) {
    return { unavailable: "a value of this Object was cut for display, so it cannot be sent again as it came" };
  }
  const json = JSON.stringify(object);
  const doc = `<<'JSON'\n${json}\nJSON`;
  const method = "coprocess.Dispatcher/Dispatch";
  const warning = json.includes(`"${redacted}"`)
    ? `credentials are masked (${redacted}): put the real values in before running, or start the server with --log-secrets`
    : null;
  const tcp = target.plaintext.find((a) => a.kind === "tcp");
  if (tcp?.kind === "tcp") {
    const hostPort = localDialAddress(tcp);
    return {
      grpcurl: `grpcurl -plaintext -d @ ${hostPort} ${method} ${doc}`,
      client: `pnpm client dispatch --server http://${hostPort} --file - ${doc}`,
      warning,
    };
  }
  const unix = target.plaintext.find((a) => a.kind === "unix");
  if (unix?.kind === "unix") {
    return {
      grpcurl: `grpcurl -plaintext -unix -d @ ${unix.path} ${method} ${doc}`,
      client: `pnpm client dispatch --server unix://${unix.path} --file - ${doc}`,
      warning,
    };
  }
  const tls = target.tls.find((a) => a.kind === "tcp");
  if (tls?.kind === "tcp") {
    const hostPort = localDialAddress(tls);
    return {
      grpcurl: `grpcurl -insecure -d @ ${hostPort} ${method} ${doc}`,
      client: `pnpm client dispatch --server https://${hostPort} --tls-ca CA.pem --file - ${doc}`,
      warning,
    };
  }
  return { unavailable: "the server has no TCP or unix socket gRPC listener to send it to" };
}
