import { strict as assert } from "node:assert";
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { after, describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { type DockerInstruction, dockerfile } from "../helpers/dockerfile.js";
import { repoPath } from "../helpers/paths.js";
import { followLog } from "../helpers/server-process.js";

// No container engine runs here, so the Dockerfile's stages are run as
// plain commands: each stage in a clean directory that holds only what its
// FROM and COPY instructions bring, its RUN commands run there, and the
// final stage's CMD and HEALTHCHECK run against the result. A file the
// image forgets (a patch pnpm needs, a config the server reads) fails here.

interface Stage {
  readonly name: string | undefined;
  readonly from: string;
  readonly steps: DockerInstruction[];
}

/** The Dockerfile's stages. */
function stages(): Stage[] {
  const out: Stage[] = [];
  for (const i of dockerfile()) {
    if (i.op === "FROM") {
      const [from, as, name] = i.args.split(" ");
      out.push({ from: from!, name: as?.toUpperCase() === "AS" ? name : undefined, steps: [] });
    } else {
      out.at(-1)!.steps.push(i);
    }
  }
  return out;
}

const manifest = JSON.parse(readFileSync(repoPath("package.json"), "utf8")) as {
  packageManager: string;
  pnpm?: { patchedDependencies?: Record<string, string> };
};
const workspace = parseYaml(readFileSync(repoPath("pnpm-workspace.yaml"), "utf8")) as { patchedDependencies?: Record<string, string> };

/** Every file `pnpm install --frozen-lockfile` reads besides the lockfile: the manifest, the workspace file, each patch. */
function installInputs(): string[] {
  const patches = { ...manifest.pnpm?.patchedDependencies, ...workspace.patchedDependencies };
  return ["package.json", "pnpm-lock.yaml", "pnpm-workspace.yaml", ...Object.values(patches)];
}

const root = mkdtempSync(join(tmpdir(), "image-stages-"));
after(() => rmSync(root, { recursive: true, force: true }));

describe("the container image's stages, run as commands in clean directories", () => {
  it("the base stage copies every file pnpm install needs (derived from package.json and pnpm-workspace.yaml)", () => {
    const base = stages()[0]!;
    const copied = base.steps.filter((s) => s.op === "COPY" && !s.args.startsWith("--from")).flatMap((s) => s.args.split(" ").slice(0, -1));
    for (const input of installInputs()) {
      assert.ok(
        copied.some((c) => input === c || input.startsWith(c.replace(/\/?$/, "/"))),
        `${input} reaches the image before pnpm install (COPY it in the base stage)`,
      );
    }
  });

  it("build, prod-deps and the final stage: the server starts from what the image holds, answers its HEALTHCHECK and serves the inspector", {
    timeout: 600_000,
  }, async () => {
    const dirs = new Map<string, string>();
    let final: { dir: string; steps: DockerInstruction[] } | undefined;
    for (const [index, stage] of stages().entries()) {
      const dir = join(root, stage.name ?? `stage-${index}`);
      const parent = dirs.get(stage.from);
      if (parent !== undefined) cpSync(parent, dir, { recursive: true, verbatimSymlinks: true });
      else mkdirSync(dir);
      for (const step of stage.steps) run(step, dir, dirs);
      if (stage.name !== undefined) dirs.set(stage.name, dir);
      final = { dir, steps: stage.steps };
    }

    const { dir, steps } = final!;
    assert.ok(existsSync(join(dir, "node_modules")) && existsSync(join(dir, "dist", "src", "main.js")));
    assert.equal(existsSync(join(dir, "src")), false, "the final stage has no TypeScript sources");
    assert.equal(existsSync(join(dir, "node_modules", "typescript")), false, "and no dev dependencies");

    // CMD, with the listen addresses moved to free loopback ports.
    const cmd = JSON.parse(steps.find((s) => s.op === "CMD")!.args) as string[];
    assert.equal(cmd[0], "node");
    const args = cmd.slice(1).map((a, i, all) => (all[i - 1] === "--listen" || all[i - 1] === "--http-listen" ? "127.0.0.1:0" : a));
    // With the inspector on: its page comes from the image too.
    const token = "image-test-token-0123";
    const server = spawn(process.execPath, [...args, "--users-store", "memory", "--inspect", "--inspect-token", token], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, NODE_ENV: "production" },
    });
    const exited = once(server, "exit");
    try {
      const log = followLog(server);
      const listening = await log.waitForLog((l) => l.msg === "server listening", 60_000);
      const address = (listening.addresses as string[])[0]!;

      const health = steps.find((s) => s.op === "HEALTHCHECK")!;
      const probe = JSON.parse(health.args.slice(health.args.indexOf("CMD") + 3)) as string[];
      const probeArgs = probe.slice(1).map((a, i, all) => (all[i - 1] === "--server" ? address : a));
      const out = execFileSync(process.execPath, probeArgs, { cwd: dir, encoding: "utf8", timeout: 30_000 });
      assert.match(out, /SERVING/);
      const page = await fetch(`http://${(listening.httpAddresses as string[])[0]!}/inspect/inspector.js`, { headers: { authorization: `Bearer ${token}` } });
      assert.equal(page.status, 200, "the image serves the inspector's page");
    } finally {
      server.kill("SIGTERM");
      assert.equal((await exited)[0], 0);
    }
  });
});

/** Runs one instruction of a stage whose /app is `dir`. */
function run(step: DockerInstruction, dir: string, stageDirs: Map<string, string>): void {
  switch (step.op) {
    case "COPY": {
      const parts = step.args.split(" ");
      const from = parts[0]!.startsWith("--from=") ? stageDirs.get(parts.shift()!.slice("--from=".length)) : undefined;
      const dest = parts.pop()!;
      for (const source of parts) {
        const src = from === undefined ? repoPath(source) : join(from, source.replace(/^\/app\//, ""));
        assert.ok(existsSync(src), `COPY source ${source} exists`);
        const target = dest.endsWith("/") ? join(dir, dest, basename(source)) : join(dir, dest);
        cpSync(src, target, { recursive: true, verbatimSymlinks: true });
      }
      return;
    }
    case "RUN": {
      const pnpmInstall = /^npm install -g pnpm@(\S+)$/.exec(step.args);
      if (pnpmInstall) {
        // The machine's pnpm stands in: it must be the version the image installs.
        assert.equal(`pnpm@${pnpmInstall[1]}`, manifest.packageManager, "the image installs the pnpm of packageManager");
        return;
      }
      if (/^mkdir -p \/app\/(\S+) && chown /.test(step.args)) {
        mkdirSync(join(dir, /^mkdir -p \/app\/(\S+)/.exec(step.args)![1]!), { recursive: true });
        return;
      }
      execFileSync("sh", ["-c", step.args], { cwd: dir, stdio: "pipe", env: { ...process.env, CI: "true" }, timeout: 300_000 });
      return;
    }
    case "WORKDIR":
      assert.equal(step.args, "/app");
      return;
    default:
      // ENV, USER, VOLUME, EXPOSE, HEALTHCHECK, CMD: read by the test above or by deploy-files.test.ts.
      return;
  }
}
