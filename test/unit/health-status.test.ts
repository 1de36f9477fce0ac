import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import { HealthStatus, ServingStatus } from "../../src/services/health/health-status.js";

describe("HealthStatus", () => {
  it("knows the whole server as '' plus each service", () => {
    const h = new HealthStatus(["a.A", "b.B"]);
    assert.deepEqual([...h.list().keys()], ["", "a.A", "b.B"]);
    assert.equal(h.get("a.A"), ServingStatus.SERVING);
    assert.equal(h.get("c.C"), undefined);
  });

  it("watch yields the current status, then every change; shutdown flips to NOT_SERVING and ends it", async () => {
    const h = new HealthStatus(["a.A"]);
    const seen: ServingStatus[] = [];
    for await (const s of h.watch("a.A", new AbortController().signal)) {
      seen.push(s);
      // Each change happens while the watcher is suspended at its yield: none may be lost.
      if (seen.length === 1) h.set("a.A", ServingStatus.NOT_SERVING);
      else if (seen.length === 2) h.set("a.A", ServingStatus.SERVING);
      else if (seen.length === 3) h.shutdown();
    }
    const { SERVING, NOT_SERVING } = ServingStatus;
    assert.deepEqual(seen, [SERVING, NOT_SERVING, SERVING, NOT_SERVING]);
    assert.equal(h.get(""), NOT_SERVING);
  });

  it("watch ends when its signal aborts", async () => {
    const h = new HealthStatus([]);
    const ac = new AbortController();
    const seen: ServingStatus[] = [];
    for await (const s of h.watch("x.X", ac.signal)) {
      seen.push(s);
      ac.abort();
    }
    assert.deepEqual(seen, [ServingStatus.SERVICE_UNKNOWN]);
  });
});
