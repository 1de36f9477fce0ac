import { strict as assert } from "node:assert";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { describe, it } from "node:test";
import { parseAllDocuments, parse as parseYaml } from "yaml";
import { type Config, parseConfig } from "../../src/config/config.js";
import { formatListenAddress } from "../../src/transport/listen-address.js";
import { loadPlugins } from "../../src/tyk/load-plugins.js";
import { dockerfile } from "../helpers/dockerfile.js";
import { silentLogger } from "../helpers/loggers.js";
import { repoPath } from "../helpers/paths.js";
import { productionNodeArgs } from "../helpers/production-args.js";

// Dockerfile, compose and Kubernetes files cannot run on this machine, so
// their contents are checked: they parse, every path they name exists, and
// ports, commands and hook names agree with each other and the server.

const text = (path: string) => readFileSync(repoPath(path), "utf8");

/** The server's own parse of a command line `node [node options] dist/src/main.js ARGS`. */
function serverConfig(command: readonly string[]): Config {
  const entry = command.indexOf("dist/src/main.js");
  assert.ok(entry > 0 && command[0] === "node", `runs node dist/src/main.js: ${command.join(" ")}`);
  assert.ok(existsSync(repoPath("src", "main.ts")));
  // Paths in the command are relative to the image's /app, i.e. the repository root here.
  const args = command.slice(entry + 1).map((a, i, all) => (all[i - 1] === "--config" ? repoPath(a) : a));
  return parseConfig(args, {})!;
}

const port = (address: string) => Number(address.slice(address.lastIndexOf(":") + 1));

describe("deployment files", () => {
  it("Dockerfile: multi-stage, production dependencies only, non-root, health check through gRPC health, ports as served", () => {
    const steps = dockerfile();
    const froms = steps.filter((s) => s.op === "FROM");
    assert.ok(froms.length >= 3, "build stages and a final stage");
    const finalStage = steps.slice(steps.lastIndexOf(froms.at(-1)!));
    assert.ok(steps.some((s) => s.op === "RUN" && /pnpm install --frozen-lockfile --prod/.test(s.args)));
    assert.ok(
      finalStage.some((s) => s.op === "COPY" && /--from=prod-deps \/app\/node_modules/.test(s.args)),
      "the final stage takes the production node_modules",
    );
    const user = finalStage.find((s) => s.op === "USER");
    assert.ok(user && !/^(root|0)(:|$)/.test(user.args), "runs as a non-root user");
    for (const copy of steps.filter((s) => s.op === "COPY" && !s.args.startsWith("--from"))) {
      const sources = copy.args.split(" ").slice(0, -1);
      for (const source of sources) assert.ok(existsSync(repoPath(source)), `COPY source ${source} exists`);
    }
    const health = finalStage.find((s) => s.op === "HEALTHCHECK")!;
    const healthCmd = JSON.parse(health.args.slice(health.args.indexOf("CMD") + 3)) as string[];
    assert.deepEqual(healthCmd.slice(0, 2), ["node", "dist/src/cli/main.js"]);
    assert.ok(healthCmd.includes("health"));
    assert.ok(existsSync(repoPath("src", "cli", "main.ts")));
    const cmd = JSON.parse(finalStage.find((s) => s.op === "CMD")!.args) as string[];
    const config = serverConfig(cmd);
    const exposed = finalStage
      .find((s) => s.op === "EXPOSE")!
      .args.split(" ")
      .map(Number)
      .sort();
    const served = [...config.listen, ...config.httpListen].map((a) => port(formatListenAddress(a))).sort();
    assert.deepEqual(exposed, served);
    assert.equal(healthCmd[healthCmd.indexOf("--server") + 1], `127.0.0.1:${port(formatListenAddress(config.listen[0]!))}`);
    assert.ok(config.gracePeriodMs < 10_000, "the drain fits docker stop's default 10 s");
    assert.match(text(".dockerignore"), /^node_modules$/m);
  });

  it("compose: Tyk Gateway, Redis and the plugin server; mounted files exist; Tyk dials the plugin server's gRPC port", async () => {
    const composePath = repoPath("config", "docker", "compose.yaml");
    const compose = parseYaml(readFileSync(composePath, "utf8")) as { services: Record<string, any> };
    assert.deepEqual(Object.keys(compose.services).sort(), ["plugins", "redis", "tyk-gateway", "tyk-oas-api"]);
    const plugins = compose.services.plugins;
    assert.ok(existsSync(join(dirname(composePath), plugins.build.context, "Dockerfile")));
    const gateway = compose.services["tyk-gateway"];
    assert.match(gateway.image, /^tykio\/tyk-gateway:v5\.\d+/);
    assert.equal(gateway.depends_on.plugins.condition, "service_healthy", "the image's HEALTHCHECK gates the gateway");
    const mounts = (gateway.volumes as string[]).map((v) => v.split(":"));
    for (const [host] of mounts) assert.ok(existsSync(join(dirname(composePath), host!)), `${host} exists`);
    const tykConfMount = mounts.find(([, target]) => target === "/opt/tyk-gateway/tyk.conf")!;
    const tykConf = JSON.parse(readFileSync(join(dirname(composePath), tykConfMount[0]!), "utf8"));
    assert.equal(tykConf.storage.host, "redis");
    const cp = tykConf.coprocess_options;
    assert.equal(cp.enable_coprocess, true);
    assert.equal(cp.grpc_authority, "localhost");
    const target = new URL(cp.coprocess_grpc_server.replace(/^tcp:/, "http:"));
    assert.equal(target.hostname, "plugins");
    const image = serverConfig(
      JSON.parse(
        dockerfile()
          .filter((s) => s.op === "CMD")
          .at(-1)!.args,
      ) as string[],
    );
    assert.equal(Number(target.port), port(formatListenAddress(image.listen[0]!)));
    const apps = mounts.filter(([, t]) => t!.startsWith(`${tykConf.app_path}/`)).map(([h]) => h!);
    // The shipped definitions, whose hooks shipped-config.test.ts checks against config/plugins.json;
    // the image serves that file's plugins. The Classic one goes into app_path; the OAS one is
    // posted to the Gateway API (the gateway skips a bare OAS document in app_path).
    assert.deepEqual(apps.map((a) => a.replace(/^\.\.\/tyk\//, "")).sort(), ["api-classic.json"]);
    const oasLoader = compose.services["tyk-oas-api"];
    const oasMount = (oasLoader.volumes as string[]).map((v) => v.split(":"))[0]!;
    assert.ok(existsSync(join(dirname(composePath), oasMount[0]!)), `${oasMount[0]} exists`);
    assert.equal(oasMount[0], "../tyk/api-oas.json");
    const script = (oasLoader.command as string[]).join(" ");
    assert.match(script, /POST .*\/tyk\/apis\/oas/);
    assert.match(script, new RegExp(`--data @${oasMount[1]}`));
    assert.equal(oasLoader.environment.TYK_SECRET, gateway.environment.TYK_GW_SECRET, "the Gateway API's secret");
    const registry = await loadPlugins(image.plugins, image.pluginOptions, silentLogger());
    const classic = JSON.parse(readFileSync(join(dirname(composePath), apps.find((a) => a.endsWith("classic.json"))!), "utf8"));
    for (const hook of classic.custom_middleware.pre as Array<{ name: string }>) assert.ok(registry.has("pre", hook.name), `pre hook ${hook.name} is served`);
    assert.ok(registry.has("auth", classic.custom_middleware.auth_check.name));
    const published = (plugins.ports as string[]).map((p) => Number(p.split(":")[1]));
    assert.ok(
      published.every((p) => image.httpListen.some((a) => port(formatListenAddress(a)) === p)),
      "published plugin ports are served",
    );
  });

  it("node runs with the same production options everywhere: pnpm serve and start, the image, Kubernetes", () => {
    // Each of these places spells the options out; the benchmark takes them from `serve`.
    const nodeOptions = (command: readonly string[]) => command.slice(1, command.indexOf("dist/src/main.js"));
    const scripts = (JSON.parse(text("package.json")) as { scripts: Record<string, string> }).scripts;
    const serve = productionNodeArgs();
    assert.ok(serve.length > 0);
    assert.deepEqual(
      nodeOptions(
        scripts
          .start!.split(" && ")
          .at(-1)!
          .replace(/^exec /, "")
          .split(" "),
      ),
      serve,
      "pnpm start",
    );
    assert.deepEqual(
      nodeOptions(
        JSON.parse(
          dockerfile()
            .filter((s) => s.op === "CMD")
            .at(-1)!.args,
        ) as string[],
      ),
      serve,
      "Dockerfile CMD",
    );
    const container = parseAllDocuments(text("config/k8s/plugins.yaml"))
      .map((d) => d.toJS() as Record<string, any>)
      .find((d) => d.kind === "Deployment")!.spec.template.spec.containers[0];
    assert.deepEqual(nodeOptions(container.args as string[]), serve, "Kubernetes args");
  });

  it("Kubernetes: gRPC probes on the served port, requests, drain within the termination grace, Services and a headless Service", () => {
    const docs = parseAllDocuments(text("config/k8s/plugins.yaml")).map((d) => d.toJS() as Record<string, any>);
    const deployment = docs.find((d) => d.kind === "Deployment")!;
    const services = docs.filter((d) => d.kind === "Service");
    assert.equal(services.length, 2);
    const pod = deployment.spec.template;
    assert.deepEqual(deployment.spec.selector.matchLabels, pod.metadata.labels);
    const container = pod.spec.containers[0];
    const config = serverConfig(container.args as string[]);
    const grpcPort = port(formatListenAddress(config.listen[0]!));
    const named = Object.fromEntries((container.ports as Array<{ name: string; containerPort: number }>).map((p) => [p.name, p.containerPort]));
    assert.equal(named.grpc, grpcPort);
    assert.equal(named.http, port(formatListenAddress(config.httpListen[0]!)));
    assert.equal(container.readinessProbe.grpc.port, grpcPort);
    assert.equal(container.livenessProbe.grpc.port, grpcPort);
    assert.ok(container.resources.requests.cpu && container.resources.requests.memory);
    assert.ok(pod.spec.terminationGracePeriodSeconds * 1000 > config.gracePeriodMs, "Kubernetes waits longer than the drain");
    assert.equal(pod.spec.securityContext.runAsNonRoot, true);
    assert.equal(pod.metadata.annotations["prometheus.io/port"], String(named.http));
    for (const service of services) {
      assert.deepEqual(service.spec.selector, pod.metadata.labels);
      for (const p of service.spec.ports as Array<{ targetPort: string }>)
        assert.ok(p.targetPort in named, `targetPort ${p.targetPort} names a container port`);
    }
    const headless = services.find((s) => s.spec.clusterIP === "None")!;
    assert.ok(headless, "a headless Service for dns:/// round robin");
    assert.match(text("config/k8s/plugins.yaml"), new RegExp(`dns:///${headless.metadata.name}\\.[\\w.]+:${grpcPort}`));
    assert.match(text("config/k8s/plugins.yaml"), /grpc_round_robin_load_balancing: true/);
    // A pinned tag: "latest" means whatever was pushed last, and a different image on each node.
    const { version } = JSON.parse(text("package.json")) as { version: string };
    assert.equal(container.image, `tyk-grpc-ts:${version}`);
    assert.equal(container.imagePullPolicy, "IfNotPresent");
  });

  it("the image runs the Node.js version CI runs the whole suite on; engines names the tested majors", () => {
    const ciNode = /^node24_version=(\d+\.\d+\.\d+)$/m.exec(text(".ci/run"))?.[1];
    assert.ok(ciNode, ".ci/run installs a pinned Node.js beside the machine's");
    for (const from of dockerfile().filter((s) => s.op === "FROM" && s.args.startsWith("node:"))) {
      assert.equal(from.args.split(" ")[0], `node:${ciNode}-bookworm-slim`);
    }
    const engines = (JSON.parse(text("package.json")) as { engines: { node: string } }).engines.node;
    assert.match(engines, new RegExp(`\\^${ciNode!.split(".")[0]}\\b`), `engines (${engines}) names Node ${ciNode}'s major`);
  });
});
