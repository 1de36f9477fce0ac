import { definePlugin, type ResponseHook } from "../tyk/plugin.js";

/** What to change in the response; from the options, overridden per API by `config_data.responseRewrite`. */
interface Rewrite {
  /** Replaces the body (the gateway recomputes Content-Length). */
  body?: string;
  /** Sets these headers (in both headers and multivalue_headers). */
  headers?: Record<string, string>;
  /** Replaces the status code. */
  status?: number;
}

/**
 * response-rewrite (Tyk's gRPC tests G4 and G10; Response hook `rewriteResponse`).
 *
 * Sets `X-Config-Data: true|false` telling whether the API sends its
 * `config_data` (G10), then applies the configured rewrite: body (G4),
 * headers and status. An API can override the rewrite in its config_data:
 * `{"responseRewrite": {"body": "...", "headers": {...}, "status": 203}}`.
 */
export default definePlugin(({ options }) => {
  const defaults = (options ?? {}) as Rewrite;

  const rewriteResponse: ResponseHook = (res, ctx) => {
    res.setHeader("X-Config-Data", ctx.config !== undefined ? "true" : "false");
    const perApi = (ctx.config as { responseRewrite?: Rewrite } | undefined)?.responseRewrite ?? {};
    const rewrite: Rewrite = { ...defaults, ...perApi, headers: { ...defaults.headers, ...perApi.headers } };
    for (const [name, value] of Object.entries(rewrite.headers ?? {})) {
      res.setHeader(name, value);
    }
    if (rewrite.body !== undefined) {
      res.setBody(rewrite.body);
    }
    if (rewrite.status !== undefined) {
      res.setStatus(rewrite.status);
    }
  };

  return { response: { rewriteResponse } };
});
