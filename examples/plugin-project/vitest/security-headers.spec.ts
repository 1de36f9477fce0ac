import { createGateway } from "tyk-grpc-ts/testing";
import { describe, expect, it } from "vitest";
import securityHeaders from "../plugins/security-headers.ts";

// The same simulator under vitest.

describe("securityHeaders on a keyless API", () => {
  const api = {
    api_id: "public",
    use_keyless: true,
    proxy: { listen_path: "/public/", target_url: "http://public.internal/", strip_listen_path: true },
    custom_middleware: { driver: "grpc", response: [{ name: "securityHeaders" }] },
    config_data: { securityHeaders: { frameOptions: "SAMEORIGIN" } },
  };

  it("sets the headers config_data asks for", async () => {
    const gateway = await createGateway({ api, plugins: [securityHeaders] });
    const res = await gateway.request({ url: "/public/index.html" });
    expect(res.status).toBe(200);
    expect(res.header("X-Frame-Options")).toBe("SAMEORIGIN");
    expect(res.header("X-Caller")).toBeUndefined();
    await gateway.close();
  });

  it("invalid config_data: the gateway would answer 500, and the log names the field", async () => {
    const gateway = await createGateway({ api: { ...api, config_data: { securityHeaders: { frameOptions: "ALLOW" } } }, plugins: [securityHeaders] });
    const res = await gateway.request({ url: "/public/index.html" });
    expect(res.status).toBe(500);
    expect(res.logs.find((l) => l.msg === "invalid config_data")?.reason).toMatch(/securityHeaders\.frameOptions: Invalid type/);
    await gateway.close();
  });
});
