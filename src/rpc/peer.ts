import { type ContextValues, createContextKey } from "@connectrpc/connect";

/** Context value: the caller's address ("ip:port", or the unix socket path). */
export const kPeer = createContextKey<string | undefined>(undefined, { description: "peer address" });

/** The caller's address recorded for this call, if known. */
export function peerAddress(values: ContextValues): string | undefined {
  return values.get(kPeer);
}

/** Context value: which path served the call ("connect", or "fast-path" for lean unary gRPC). */
export const kServedBy = createContextKey<"connect" | "fast-path">("connect", { description: "serving path" });
