import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoPath } from "./paths.js";
import { keylessApi } from "./tyk-real-gateway.js";

// The plugin config and API definitions the end-to-end suites run the real
// gateway with (test/e2e/tyk-e2e.test.ts) and run the gateway simulator
// with beside it (test/e2e/tyk-simulator-parity.test.ts).

/** The shipped plugin config with the test keys and plugins added (it listens where the test's --listen says). */
export function pluginConfig(dir: string): string {
  const shipped = JSON.parse(readFileSync(repoPath("config", "plugins.json"), "utf8")) as {
    plugins: string[];
    pluginOptions: Record<string, Record<string, unknown>>;
  };
  const options = shipped.pluginOptions;
  options["custom-auth"]!.keys = {
    ...(options["custom-auth"]!.keys as object),
    "quota-key": { quotaMax: 2, quotaRenewalRate: 3600, metadata: { team: "quota" } },
    "rate-key": { rate: 2, per: 60, metadata: { team: "rate" } },
  };
  options["header-injection"]!.sessionMetadata = ["team", "testkey", "testkey2"];
  const config = { ...shipped, plugins: [...shipped.plugins, repoPath("dist", "test", "fixtures", "tyk-test-plugins.js")] };
  const path = join(dir, "plugins.json");
  writeFileSync(path, JSON.stringify(config, null, 2));
  return path;
}

/** A keyless Classic API on `/<id>/` with these gRPC custom_middleware hooks. */
export function keyless(id: string, target: string, middleware: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return keylessApi(id, target, { custom_middleware: { driver: "grpc", ...middleware }, ...extra });
}

/** The shipped Tyk OAS API definition with only the upstream target rewritten. */
export function oasDefinition(upstream: string): object {
  const oas = JSON.parse(readFileSync(repoPath("config", "tyk", "api-oas.json"), "utf8")) as { "x-tyk-api-gateway": { upstream: { url: string } } };
  oas["x-tyk-api-gateway"].upstream.url = `${upstream}/`;
  return oas;
}

/** The shipped Classic API definition with only the upstream target rewritten, and the ones the cases need. */
export function apiDefinitions(upstream: string): object[] {
  const classic = JSON.parse(readFileSync(repoPath("config", "tyk", "api-classic.json"), "utf8")) as { proxy: { target_url: string } };
  classic.proxy.target_url = `${upstream}/`;
  return [
    classic,
    // The Tyk article's flow: a keyless API with one Pre hook (echo-log answers every name).
    keyless("article", `${upstream}/`, { pre: [{ name: "MyPreCustomPluginForBasicAuth" }] }),
    // Tyk's 'Pre Hook with SetHeaders'.
    keyless("inject", `${upstream}/`, { pre: [{ name: "injectHeaders" }] }),
    // Response rewrite (G4, G10): the API's config_data says what to change; disabled, it is not sent.
    keyless(
      "resp",
      `${upstream}/`,
      { response: [{ name: "rewriteResponse" }] },
      {
        config_data: { responseRewrite: { body: "newbody ✓", status: 203, headers: { "X-Rewritten": "yes" } } },
      },
    ),
    keyless(
      "resp-off",
      `${upstream}/`,
      { response: [{ name: "rewriteResponse" }] },
      { config_data: { responseRewrite: { body: "hidden" } }, config_data_disabled: true },
    ),
    // The return-overrides matrix (Tyk's Python coprocess tests), driven by the query.
    keyless("overrides", `${upstream}/`, { pre: [{ name: "returnOverrides" }] }),
    keyless("quote", `${upstream}/`, { pre: [{ name: "rejectQuote" }] }),
    // Bodies (G2): JSON as text and bytes, binary multipart as bytes only.
    keyless("bodies", `${upstream}/`, { pre: [{ name: "testPreHook2" }] }),
    // coprocess_test.go's ObjectPostProcess: header and query parameter edits.
    keyless("edits", `${upstream}/`, { pre: [{ name: "postProcess" }] }),
    // The Python test's loop: URL rewrite and method transform, then a Post hook sends it to another API.
    {
      ...keyless("loop", `${upstream}/`, { post: [{ name: "urlRewrite" }] }),
      version_data: {
        not_versioned: true,
        versions: {
          Default: {
            name: "Default",
            use_extended_paths: true,
            extended_paths: {
              url_rewrites: [{ path: "/get", method: "GET", match_pattern: "/get", rewrite_to: "/test2" }],
              method_transforms: [{ path: "/get", method: "GET", to_method: "POST" }],
            },
          },
        },
      },
    },
    keyless("test-api-2", `${upstream}/api2/`, {}),
    // Tyk's 'Post Hook with metadata': keys created through the Gateway API, with nested metadata.
    {
      ...keyless("meta", `${upstream}/`, {
        post_key_auth: [{ name: "sessionMetadataHeaders", require_session: true }],
        post: [{ name: "testPostHook1", require_session: true }],
      }),
      use_keyless: false,
      auth: { auth_header_name: "Authorization" },
    },
  ];
}
