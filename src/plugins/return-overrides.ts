import { definePlugin, type RequestHook, reject, respond } from "../tyk/plugin.js";

/**
 * return-overrides (the return-overrides matrix of Tyk's coprocess tests;
 * Pre hook `returnOverrides`). Answers the client itself, driven by the
 * request's query parameters, to show every way a hook can end a request:
 *
 * - `status` (default 200): the HTTP status;
 * - `body=json` (default) answers `{"foo": "bar"}`, `body=text` answers `foobar`;
 * - `override_error=1`: with status >= 400, send the body verbatim instead of
 *   Tyk's JSON error page.
 *
 * Status < 400, or >= 400 with override_error: `respond(status, body)`, the
 * body as is. Status >= 400 without it: `reject(status, body)`, rendered by
 * the gateway as `{"error": "<body>"}`. Always sets header `X-Foo: Bar`.
 */
export default definePlugin(() => {
  const returnOverrides: RequestHook = (req) => {
    const status = Number(req.params.status ?? "200");
    const body = req.params.body === "text" ? "foobar" : '{"foo": "bar"}';
    const headers = { "X-Foo": "Bar" };
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      return reject(400, "status must be an HTTP status code (100-599)", { headers });
    }
    if (status >= 400 && req.params.override_error !== "1") {
      return reject(status, body, { headers });
    }
    return respond(status, body, { headers });
  };

  return { pre: { returnOverrides } };
});
