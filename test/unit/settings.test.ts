import { strict as assert } from "node:assert";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { parseConfig, usage } from "../../src/config/config.js";
import { envVariable, fileKey, type Setting, settings } from "../../src/config/settings.js";
import { renderSettingsBlocks } from "../../src/config/settings-text.js";
import { formatDuration, parseDuration } from "../../src/util/duration.js";
import { formatSize, parseSize } from "../../src/util/size.js";
import { repoPath } from "../helpers/paths.js";

const all = settings as readonly Setting[];
// The settings with a plain default, each as every source would give it.
const withDefault = all.filter((s) => s.default !== undefined);

describe("the settings table", () => {
  it("--help names every flag and environment variable, in the table's order", () => {
    let from = 0;
    for (const s of all.filter((s) => !s.fileOnly)) {
      const at = usage.indexOf(`--${s.flag}`, from);
      assert.ok(at >= from, `--${s.flag} in --help, after the one before it`);
      from = at;
      const env = envVariable(s);
      if (env !== undefined) assert.ok(usage.includes(`[${env}`), `${env} in --help`);
    }
  });

  it("each default means the same given as a flag, in the environment and in the config file", () => {
    const defaults = parseConfig([], {});
    for (const s of withDefault) {
      const value = s.default!;
      const asFlag = s.kind === "flag" ? [`--${s.flag}`] : [`--${s.flag}`, value];
      assert.deepEqual(parseConfig(asFlag, {}), defaults, `--${s.flag} ${value}`);
      const env = envVariable(s);
      if (env !== undefined) assert.deepEqual(parseConfig([], { [env]: value }), defaults, `${env}=${value}`);
      const key = fileKey(s)!;
      const inFile =
        s.kind === "list"
          ? [value]
          : s.kind === "switch"
            ? value === "on"
            : s.kind === "number" || (s.kind === "count" && value !== "auto")
              ? Number(value)
              : value;
      assert.deepEqual(
        parseConfig(["--config", "c.json"], {}, () => JSON.stringify({ [key]: inFile })),
        defaults,
        `"${key}": ${JSON.stringify(inFile)}`,
      );
    }
  });

  it("the config file takes every key of the table, and nothing else", () => {
    const keys = all.flatMap((s) => fileKey(s) ?? []);
    assert.deepEqual(new Set(keys).size, keys.length, "no key twice");
    assert.throws(
      () => parseConfig(["--config", "c.json"], {}, () => '{"maxDeadLine": "1s"}'),
      (e: Error) => e.message.includes('unknown setting "maxDeadLine"') && keys.every((k) => e.message.includes(k)),
    );
  });

  it("README.md and docs/configuration.md hold the tables the settings make (pnpm docs:settings writes them)", () => {
    for (const path of ["README.md", "docs/configuration.md"]) {
      const text = readFileSync(repoPath(path), "utf8");
      assert.match(text, /<!-- settings: (all|common) -->/, `${path} has a settings table`);
      assert.equal(renderSettingsBlocks(text), text, `${path} is up to date: run pnpm docs:settings`);
    }
  });

  it("durations and sizes are written the way they are read", () => {
    for (const ms of [0, 1, 500, 1000, 20_000, 90_000, 600_000, 7_200_000]) assert.equal(parseDuration(formatDuration(ms), "x"), ms);
    assert.deepEqual([formatDuration(600_000), formatDuration(1500)], ["10m", "1500ms"]);
    for (const bytes of [1, 1000, 1024, 65_536, 2 ** 30, 3 * 2 ** 20 + 1]) assert.equal(parseSize(formatSize(bytes)), bytes);
    assert.deepEqual([formatSize(64 * 1024), formatSize(256 * 2 ** 20)], ["64KiB", "256MiB"]);
  });
});
