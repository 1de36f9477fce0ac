import { readFileSync, writeFileSync } from "node:fs";
import { renderSettingsBlocks } from "./settings-text.js";

// `pnpm docs:settings`: rewrites the settings tables of the files named on
// the command line (README.md, docs/configuration.md) from the settings
// table; a test checks that they are up to date.
for (const path of process.argv.slice(2)) {
  const text = readFileSync(path, "utf8");
  const rendered = renderSettingsBlocks(text);
  if (rendered !== text) {
    writeFileSync(path, rendered);
    process.stdout.write(`${path}: settings tables rewritten\n`);
  }
}
