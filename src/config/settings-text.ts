import { envVariable, fileKey, fileValueType, type Setting, settings } from "./settings.js";

/** How a setting is written on the command line: "--listen ADDR", "--fast-path on|off". */
function flagUsage(s: Setting): string {
  const short = s.short ? `-${s.short}, ` : "";
  const value = s.kind === "switch" ? " on|off" : s.kind === "flag" ? "" : ` ${s.choices && s.choices.length <= 3 ? s.choices.join("|") : (s.arg ?? "VALUE")}`;
  return `${short}--${s.flag}${value}`;
}

// A text as it is shown: as it is in --help, as code in Markdown.
type Show = (text: string) => string;
const plain: Show = (text) => text;

/** How a setting is written in the environment: "LISTEN (comma-separated)", "LOG_SECRETS=true". */
function envUsage(s: Setting, show: Show = plain): string | undefined {
  const name = envVariable(s);
  if (name === undefined) return undefined;
  return s.kind === "list" ? `${show(name)} (comma-separated)` : show(s.kind === "flag" ? `${name}=true` : name);
}

/** The choices of a setting with more than flagUsage shows: " One of a, b, c, d." */
function choicesText(s: Setting, show: Show = plain): string {
  return s.choices && s.choices.length > 3 ? ` One of ${s.choices.map(show).join(", ")}.` : "";
}

function defaultOf(s: Setting): string | undefined {
  return s.defaultText ?? s.default;
}

// The help's text of one setting: what it does, its choices and default.
function description(s: Setting): string {
  const fallback = defaultOf(s);
  return `${s.help}${choicesText(s)}${fallback === undefined ? "" : ` Default: ${fallback}.`}`;
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line !== "" && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === "" ? word : `${line} ${word}`;
    }
  }
  return line === "" ? lines : [...lines, line];
}

const optionColumn = 30;
const helpWidth = 100;

/** The --help text, from the settings table. */
export function helpText(): string {
  const out = [
    "Usage: pnpm start [options]   (or: node dist/src/main.js [options])",
    "",
    ...wrap(
      "Every setting can also be given in the environment (in brackets) or in the config file (--config) under its camelCase key; flags win over the environment, which wins over the config file. The full table: docs/configuration.md.",
      helpWidth,
    ),
  ];
  let section = "";
  for (const s of settings as readonly Setting[]) {
    if (s.fileOnly) continue;
    if (s.section !== section) {
      section = s.section;
      out.push("", `${section}:`);
    }
    const env = envUsage(s);
    const text = wrap(`${description(s)}${env ? ` [${env}]` : ""}`, helpWidth - optionColumn);
    const option = `  ${flagUsage(s)}`;
    if (option.length < optionColumn - 1) {
      out.push(`${option.padEnd(optionColumn)}${text[0]}`);
    } else {
      out.push(option, `${" ".repeat(optionColumn)}${text[0]}`);
    }
    out.push(...text.slice(1).map((l) => `${" ".repeat(optionColumn)}${l}`));
  }
  return `${out.join("\n")}\n`;
}

const cell = (text: string) => text.replaceAll("|", "\\|");
const code: Show = (text) => (text === "" ? "" : `\`${cell(text)}\``);

/**
 * The settings as a Markdown table (docs/configuration.md; `common` ones
 * only: the README's): flag, environment variable, config file key and its
 * JSON type, default, and what it does.
 */
export function settingsMarkdown(which: "all" | "common" = "all"): string {
  const rows = (settings as readonly Setting[])
    .filter((s) => s.flag !== "help" && (which === "all" || s.common === true))
    .map((s) => {
      const flag = s.fileOnly ? "" : `${code(flagUsage(s))}${s.kind === "list" ? " (repeatable)" : ""}`;
      const key = fileKey(s);
      const file = key === undefined ? "" : `${code(key)} (${fileValueType[s.kind]})`;
      const fallback = s.defaultText ?? (s.default === undefined ? "" : code(s.default));
      const cells = [flag, envUsage(s, code) ?? "", file, cell(fallback), `${cell(s.help)}${choicesText(s, code)}`];
      return which === "all" ? cells : [cells[0], cells[1], cells[3], cells[4]];
    });
  const head =
    which === "all" ? ["flag", "environment", "config file key (JSON type)", "default", "what it does"] : ["flag", "environment", "default", "what it does"];
  return [head, head.map(() => "---"), ...rows].map((cells) => `| ${cells.join(" | ")} |`).join("\n");
}

const block = /(<!-- settings: (all|common) -->)[\s\S]*?(<!-- \/settings -->)/g;

/**
 * A Markdown text with each settings block (between `<!-- settings: all -->`
 * or `<!-- settings: common -->` and `<!-- /settings -->`) made anew from
 * the table. A document is up to date when this returns it unchanged.
 */
export function renderSettingsBlocks(markdown: string): string {
  return markdown.replace(block, (_, open: string, which: "all" | "common", close: string) => `${open}\n${settingsMarkdown(which)}\n${close}`);
}
