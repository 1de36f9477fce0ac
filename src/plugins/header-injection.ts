import { definePlugin, type RequestHook } from "../tyk/plugin.js";

/** Options (config file: `pluginOptions["header-injection"]`). */
interface Options {
  /** Headers set on every request through the hook (default `{"X-Tyk-Plugin": "header-injection"}`). */
  headers?: Record<string, string>;
  /** PostKeyAuth: session metadata keys copied into `X-Tyk-Meta-<key>` headers (default: none). */
  sessionMetadata?: string[];
}

/**
 * header-injection (Tyk's gRPC test G1, and the Java tutorial's plugins).
 *
 * - Pre and Post hook `injectHeaders`: sets the configured headers on the
 *   request before it goes upstream.
 * - PostKeyAuth hook `sessionMetadataHeaders`: copies chosen entries of the
 *   authenticated key's session metadata into request headers, so the
 *   upstream learns who is calling.
 */
export default definePlugin(({ options }) => {
  const opts = (options ?? {}) as Options;
  const headers = opts.headers ?? { "X-Tyk-Plugin": "header-injection" };
  const metadataKeys = opts.sessionMetadata ?? [];

  const injectHeaders: RequestHook = (req) => {
    for (const [name, value] of Object.entries(headers)) {
      req.setHeader(name, value);
    }
  };

  const sessionMetadataHeaders: RequestHook = (req, ctx) => {
    for (const key of metadataKeys) {
      const value = ctx.session?.metadata[key];
      if (value !== undefined) {
        req.setHeader(`X-Tyk-Meta-${key}`, value);
      }
    }
  };

  return {
    pre: { injectHeaders },
    post: { injectHeaders },
    postKeyAuth: { sessionMetadataHeaders },
  };
});
