import { strict as assert } from "node:assert";
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { bufBin, repoPath, repoRoot } from "../helpers/paths.js";

// The proto toolchain: generated code is what `buf generate` makes now, lint
// passes, and our Tyk protos match Tyk's on the wire and in JSON.

function buf(args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    // node_modules/.bin on PATH so buf finds protoc-gen-es, as under `pnpm generate`.
    const env = { ...process.env, PATH: `${repoPath("node_modules", ".bin")}:${process.env.PATH}` };
    execFile(bufBin, args, { cwd: repoRoot, env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? Number(err.code) : 0, out: stdout + stderr });
    });
  });
}

function listFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" })
    .filter((f) => statSync(join(dir, f)).isFile())
    .sort();
}

describe("proto toolchain", () => {
  it("gen/ is exactly what `pnpm generate` produces (run it and commit when this fails)", async () => {
    const out = mkdtempSync(join(tmpdir(), "gen-check-"));
    try {
      const r = await buf(["generate", "--output", out]);
      assert.equal(r.code, 0, r.out);
      const fresh = join(out, "gen");
      const committed = repoPath("gen");
      assert.deepEqual(listFiles(committed), listFiles(fresh), "same files");
      for (const f of listFiles(fresh)) {
        assert.equal(readFileSync(join(committed, f), "utf8"), readFileSync(join(fresh, f), "utf8"), `gen/${f} is stale`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it("buf lint passes", async () => {
    const r = await buf(["lint"]);
    assert.equal(r.code, 0, r.out);
  });

  // Tyk's protos are reference material beside the repository (../shared), present in CI.
  const upstream = join(repoRoot, "..", "shared", "reference", "tyk-coprocess-proto");
  const haveUpstream = existsSync(upstream);
  const skip = !haveUpstream && process.env.CI !== "true" ? `no ${upstream} here (CI always has it)` : false;
  it("coprocess protos match Tyk's upstream protos under WIRE_JSON, both ways", { skip }, async () => {
    const config = JSON.stringify({ version: "v2", breaking: { use: ["WIRE_JSON"] } });
    // buf.yaml's breaking category is WIRE_JSON.
    const ours = await buf(["breaking", "proto/coprocess", "--against", relative(repoRoot, upstream)]);
    assert.equal(ours.code, 0, ours.out);
    // Reverse direction: nothing in ours that upstream lacks (an added field would show here).
    const theirs = await buf(["breaking", upstream, "--against", "proto/coprocess", "--config", config]);
    assert.equal(theirs.code, 0, theirs.out);
  });
});
