import { definePlugin } from "tyk-grpc-ts/plugin";
import * as v from "valibot";

/** The API's config_data: `{"securityHeaders": {...}}`, validated before the hook runs. */
const Config = v.object({
  securityHeaders: v.optional(v.object({ frameOptions: v.optional(v.picklist(["DENY", "SAMEORIGIN"]), "DENY"), cacheControl: v.optional(v.string()) }), {}),
});

/**
 * Response hook "securityHeaders": adds security headers to every response,
 * and says who the caller was. It fails open: if it ever throws, the client
 * still gets the upstream's response (the failure is logged and counted).
 */
export default definePlugin({
  config: Config,
  setup: () => ({
    response: {
      securityHeaders: {
        onFailure: "open",
        run(res, ctx) {
          const settings = ctx.config.securityHeaders;
          res.setHeader("X-Frame-Options", settings.frameOptions);
          res.setHeader("X-Content-Type-Options", "nosniff");
          if (settings.cacheControl !== undefined) res.setHeader("Cache-Control", settings.cacheControl);
          const owner = ctx.metadata.owner;
          if (owner !== undefined) res.setHeader("X-Caller", owner);
        },
      },
    },
  }),
});
