import { strict as assert } from "node:assert";
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { after, before, describe, it } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { externalTool } from "../helpers/external-tools.js";
import { repoPath } from "../helpers/paths.js";
import { type ServerProcess, startServerProcess } from "../helpers/server-process.js";
import { keyless } from "../helpers/tyk-e2e-setup.js";
import { type Gateway, gatewayBinary, gatewayRequest, startGateway, startRedis, startUpstream } from "../helpers/tyk-real-gateway.js";

// The call inspector page in a real browser: Debian's Chromium, driven by
// playwright-core (no browser download: executablePath). Calls are made
// with grpcurl, as a person replaying one would, and with the real Tyk
// Gateway when TYK_GATEWAY_BIN is set. Screenshots go to test-artifacts/inspector/
// (git-ignored; CI keeps them as artifacts).

const browserBin = externalTool("Chromium", "CHROMIUM_BIN", ["/usr/bin/chromium", "chromium"]);
const grpcurl = externalTool("grpcurl", "GRPCURL", ["grpcurl"]);
const skip = "skip" in browserBin ? browserBin.skip : "skip" in grpcurl ? grpcurl.skip : undefined;
const pluginFile = repoPath("dist", "test", "fixtures", "inspector-plugins.js");
const shots = repoPath("test-artifacts", "inspector");
// Generous: a loaded two-core machine starts Chromium and draws slowly.
const waitMs = 30_000;

interface Page$ {
  page: Page;
  close(): Promise<void>;
}

async function openPage(browser: Browser, baseUrl: string): Promise<Page$> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: baseUrl });
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(`${baseUrl}/inspect`);
  await page.waitForSelector("#status[data-state=live]", { timeout: waitMs });
  return {
    page,
    close: async () => {
      await context.close();
      assert.deepEqual(errors, [], "the page's script threw");
    },
  };
}

function dispatchObject(hookName: string, apiId: string, method = "GET", headers: Record<string, string> = {}): object {
  return {
    hookType: "Pre",
    hookName,
    request: {
      headers: { Host: "gateway.local", "X-Internal": "1", ...headers },
      url: `/${apiId}/items?page=2`,
      method,
      returnOverrides: { responseCode: -1 },
    },
    spec: { APIID: apiId, OrgID: "default" },
  };
}

/** Sends an Object with grpcurl; its reply (or throws with grpcurl's stderr). */
function grpcurlDispatch(address: string, object: object): Record<string, unknown> {
  const out = execFileSync((grpcurl as { path: string }).path, ["-plaintext", "-d", "@", address, "coprocess.Dispatcher/Dispatch"], {
    input: JSON.stringify(object),
    encoding: "utf8",
    timeout: 60_000,
  });
  return JSON.parse(out) as Record<string, unknown>;
}

const rows = (page: Page) => page.locator("#calls tr");
const shot = (page: Page, name: string) => page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });

describe("the call inspector in Chromium", { skip }, () => {
  let server: ServerProcess;
  let browser: Browser;
  let view: Page$;

  before(async () => {
    mkdirSync(shots, { recursive: true });
    server = await startServerProcess(["--inspect", "--http-listen", "127.0.0.1:0", "--plugin", pluginFile, "--plugin-timeout", "300ms"]);
    browser = await chromium.launch({ executablePath: (browserBin as { path: string }).path, args: ["--no-sandbox"], timeout: 60_000 });
    view = await openPage(browser, server.httpBaseUrl!);
  });
  after(async () => {
    await view?.close();
    await browser?.close();
    await server?.stop();
  });

  it("lists calls made through the server as they end: API, hook, plugin, outcome", async () => {
    const { page } = view;
    await page.click("#clear");
    grpcurlDispatch(server.address, dispatchObject("addUser", "orders"));
    grpcurlDispatch(server.address, dispatchObject("blockDeletes", "billing", "DELETE"));
    await page.waitForFunction(() => document.querySelectorAll("#calls tr").length === 2, undefined, { timeout: waitMs });
    const texts = await rows(page).evaluateAll((trs) => trs.map((tr) => [...tr.querySelectorAll("td")].slice(1, 7).map((td) => td.textContent)));
    assert.deepEqual(texts, [
      ["billing", "Pre", "blockDeletes", "inspector-test", "DELETE /billing/items?page=2", "reject 403"],
      ["orders", "Pre", "addUser", "inspector-test", "GET /orders/items?page=2", "continue"],
    ]);
    await shot(page, "list");
  });

  it("opens a call: the header the plugin set, in words and highlighted in the reply, beside the Object received, with its log lines", async () => {
    const { page } = view;
    await page.click('#calls tr:has-text("addUser")');
    await page.waitForSelector("#reply", { timeout: waitMs });
    assert.deepEqual(await page.locator("#changes li").allTextContents(), ['request header X-User set to "alice"', "deleted request headers: X-Internal"]);
    const added = await page.locator("#reply .mark-added").allTextContents();
    assert.ok(
      added.some((t) => t.trim() === '"X-User": "alice"'),
      `the reply marks the header added: ${JSON.stringify(added)}`,
    );
    assert.equal(await page.locator("#received .mark-added").count(), 0, "nothing is marked added on the received side");
    // (Map entries come in the order grpcurl sent them, which Go does not fix: the last one has no comma.)
    const removed = (await page.locator("#received .mark-removed").allTextContents()).map((t) => t.trim().replace(/,$/, ""));
    assert.deepEqual(removed, ['"X-Internal": "1"'], "the header the reply deletes is marked where the request holds it");
    assert.ok((await page.locator("#logs").textContent())?.includes("user header added"), "the plugin's log line is shown");
    await shot(page, "detail");
  });

  it("filters by API, by hook and by outcome", async () => {
    const { page } = view;
    await page.click("#close-detail");
    const apis = async () => rows(page).evaluateAll((trs) => trs.map((tr) => tr.children[1]?.textContent));
    await page.selectOption("#filter-api", "billing");
    assert.deepEqual(await apis(), ["billing"]);
    await page.selectOption("#filter-api", "");
    await page.selectOption("#filter-outcome", "continue");
    assert.deepEqual(await apis(), ["orders"]);
    await page.selectOption("#filter-outcome", "");
    await page.selectOption("#filter-hook", "Pre blockDeletes");
    assert.deepEqual(await apis(), ["billing"]);
    await page.selectOption("#filter-hook", "");
    assert.equal(await rows(page).count(), 2);
  });

  it("holds new calls while paused, shows them on resume, and clears (for the next page too)", async () => {
    const { page } = view;
    await page.click("#pause");
    grpcurlDispatch(server.address, dispatchObject("later", "orders"));
    await page.waitForFunction(() => document.getElementById("counts")?.textContent?.includes("1 new while paused"), undefined, { timeout: waitMs });
    assert.equal(await rows(page).count(), 2, "a paused list does not change");
    await page.click("#pause");
    await page.waitForFunction(() => document.querySelectorAll("#calls tr").length === 3, undefined, { timeout: waitMs });
    await page.click("#clear");
    await page.waitForFunction(() => document.querySelectorAll("#calls tr").length === 0, undefined, { timeout: waitMs });
    assert.equal(await page.locator("#empty").isVisible(), true);
    await page.reload();
    await page.waitForSelector("#status[data-state=live]", { timeout: waitMs });
    assert.equal(await rows(page).count(), 0, "the server forgot the calls too");
  });

  it("copies replay commands (grpcurl, pnpm client) that send the same Object and get the same reply", async () => {
    const { page } = view;
    grpcurlDispatch(server.address, dispatchObject("addUser", "replays"));
    await page.waitForFunction(() => document.querySelectorAll("#calls tr").length === 1, undefined, { timeout: waitMs });
    await page.click("#calls tr");
    await page.waitForSelector("#reply", { timeout: waitMs });
    const shownReceived = JSON.parse((await page.locator("#received").textContent())!) as unknown;
    const shownReply = JSON.parse((await page.locator("#reply").textContent())!) as unknown;
    const env = { ...process.env, PATH: `${dirname((grpcurl as { path: string }).path)}:${process.env.PATH}` };
    for (const [button, count] of [
      ["grpcurl", 2],
      ["pnpm client", 3],
    ] as const) {
      await page.click(`button[data-copy="${button}"]`);
      await page.waitForFunction((b) => document.querySelector(`button[data-copy="${b}"]`)?.textContent === "Copied", button, { timeout: waitMs });
      const command = await page.evaluate(() => navigator.clipboard.readText());
      assert.equal(await page.locator("#replay-command").textContent(), command, "the command shown is the one copied");
      const out = execFileSync("bash", ["-c", command], { cwd: repoPath(), env, encoding: "utf8", timeout: 60_000 });
      // (pnpm prints the script's name first.)
      const replied = JSON.parse(out.slice(out.search(/^\{/m))) as unknown;
      assert.deepEqual(replied, shownReply, `${button}: the replay's reply is the reply shown`);
      // The replayed call shows up too, with the same Object.
      await page.waitForFunction((n) => document.querySelectorAll("#calls tr").length === n, count, { timeout: waitMs });
    }
    await page.click("#calls tr");
    await page.waitForFunction(() => document.querySelector("h2")?.textContent?.startsWith("#"), undefined, { timeout: waitMs });
    await page.waitForSelector("#received", { timeout: waitMs });
    assert.deepEqual(JSON.parse((await page.locator("#received").textContent())!), shownReceived, "the replay sent the Object received");
    await shot(page, "replay");
  });
});

const gateway = gatewayBinary();

describe("the call inspector with the real Tyk Gateway", { skip: skip ?? ("missing" in gateway ? gateway.missing : undefined) }, () => {
  it("shows requests through the gateway: a reject with its status; the header the plugin set, which the upstream got", async () => {
    const server = await startServerProcess(["--inspect", "--http-listen", "127.0.0.1:0", "--plugin", pluginFile]);
    const redis = await startRedis();
    const upstream = await startUpstream();
    let tyk: Gateway | undefined;
    const browser = await chromium.launch({ executablePath: (browserBin as { path: string }).path, args: ["--no-sandbox"], timeout: 60_000 });
    let view: Page$ | undefined;
    try {
      tyk = await startGateway(gateway as { bin: string; templates: string }, {
        redisPort: redis.port,
        pluginTarget: `tcp://${server.address}`,
        apis: [
          keyless("orders", `${upstream.url}/`, { pre: [{ name: "addUser" }] }),
          keyless("billing", `${upstream.url}/`, { pre: [{ name: "blockDeletes" }] }),
        ],
      });
      view = await openPage(browser, server.httpBaseUrl!);
      const res = await gatewayRequest(tyk.baseUrl, "/orders/items?page=2", { headers: { Authorization: "Bearer s3cret", "X-Internal": "1" } });
      assert.equal(res.status, 200);
      assert.equal(upstream.last("/items")?.headers["x-user"], "alice");
      const refused = await gatewayRequest(tyk.baseUrl, "/billing/items/7", { method: "DELETE" });
      assert.equal(refused.status, 403);
      assert.match(refused.text, /deletes are not allowed/);
      const { page } = view;
      await page.waitForFunction(() => document.querySelectorAll("#calls tr").length === 2, undefined, { timeout: waitMs });
      assert.deepEqual(await rows(page).evaluateAll((trs) => trs.map((tr) => tr.children[6]?.textContent)), ["reject 403", "continue"]);
      await page.click('#calls tr:has-text("addUser")');
      await page.waitForSelector("#reply", { timeout: waitMs });
      assert.deepEqual(await page.locator("#changes li").allTextContents(), ['request header X-User set to "alice"', "deleted request headers: X-Internal"]);
      const received = JSON.parse((await page.locator("#received").textContent())!) as {
        request: { headers: Record<string, string> };
        spec: Record<string, string>;
      };
      assert.equal(received.spec.APIID, "orders");
      assert.equal(received.request.headers.Authorization, "[redacted]", "credentials masked as in the log");
      await shot(page, "tyk-gateway");
    } finally {
      await view?.close();
      await browser.close();
      await tyk?.stop();
      await upstream.stop();
      await redis.stop();
      await server.stop();
    }
  });
});
