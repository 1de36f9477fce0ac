import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { create, toJson } from "@bufbuild/protobuf";
import { ObjectSchema } from "../../gen/coprocess_object_pb.js";
import { isSensitiveKey, metadataForLog } from "../../src/rpc/metadata.js";
import { maskEventJson, maskObjectJson } from "../../src/tyk/mask.js";

// What the logs hide: every credential the gateway can put in an Object or
// an event, under every name Tyk users configure for it.

const secret = "SECRET-value";

describe("masking credentials in logs", () => {
  it("credential-like names, and only those", () => {
    for (const name of [
      "Authorization",
      "Proxy-Authorization",
      "Cookie",
      "Set-Cookie",
      "X-Api-Key",
      "api_key",
      "X-Access-Key",
      "access_key",
      "X-JWT-Assertion",
      "x-jwt",
      "token",
      "access_token",
      "key",
      "Key",
      "x-auth-key",
      "session_id",
      "client_secret",
      "password",
    ]) {
      assert.ok(isSensitiveKey(name), name);
    }
    for (const name of ["Host", "Content-Type", "X-Request-Id", "User-Agent", "monkey", "keyboard", "q", "page"]) {
      assert.ok(!isSensitiveKey(name), name);
    }
    const headers = new Headers({ "x-access-key": secret, "x-jwt-assertion": secret, "x-request-id": "r1" });
    assert.deepEqual(metadataForLog(headers), { "x-access-key": "[redacted]", "x-jwt-assertion": "[redacted]", "x-request-id": "r1" });
  });

  it("an Object's headers, parameters (extended_params too) and URLs", () => {
    const object = create(ObjectSchema, {
      request: {
        headers: { "X-Access-Key": secret, "X-JWT-Assertion": secret, Accept: "*/*" },
        params: { key: secret, page: "2" },
        extendedParams: { key: secret, client_secret: secret, region: "eu" },
        addParams: { access_token: secret },
        url: `/get?key=${secret}&page=2`,
        requestUri: `/get?page=2&x-access-key=${secret}`,
      },
    });
    const json = maskObjectJson(toJson(ObjectSchema, object));
    assert.doesNotMatch(JSON.stringify(json), /SECRET/);
    assert.deepEqual(json.request?.extendedParams, { key: "[redacted]", client_secret: "[redacted]", region: "eu" });
    assert.equal(json.request?.url, "/get?key=[redacted]&page=2");
    assert.equal(json.request?.requestUri, "/get?page=2&x-access-key=[redacted]");
    assert.equal(json.request?.headers?.Accept, "*/*");
  });

  it("an event's Meta: the key, a token, the originating request; the rest and the payload itself untouched", () => {
    const payload = {
      message: { Type: "AuthFailure", Meta: { Key: secret, Token: secret, OriginatingRequest: secret, Origin: "10.0.0.1" } },
      handler_name: "h",
    };
    const masked = maskEventJson(payload) as typeof payload;
    assert.doesNotMatch(JSON.stringify(masked), /SECRET/);
    assert.equal(masked.message.Meta.Origin, "10.0.0.1");
    assert.equal(payload.message.Meta.Key, secret, "the parsed payload a plugin gets is not changed");
    const plain = { message: { Meta: { Origin: "10.0.0.1" } } };
    assert.equal(maskEventJson(plain), plain, "nothing to mask: no copy");
  });
});
