import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, extname, resolve, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import type { Logger } from "../observability/logger.js";
import type { Plugin, PluginInit } from "./plugin.js";
import { PluginRegistry } from "./registry.js";
import { issuesText } from "./schema-issues.js";

// Plugins live in src/plugins/ (compiled to dist/src/plugins/) and are named
// by file name; anything that looks like a path is imported from there instead.
const pluginDir = new URL("../plugins/", import.meta.url);
const bareName = /^[a-z0-9][a-z0-9-]*$/;
const typeScript = new Set([".ts", ".mts", ".cts", ".tsx"]);

/** The plugin names found in src/plugins/. */
export function builtInPlugins(): string[] {
  return readdirSync(fileURLToPath(pluginDir))
    .filter((f) => f.endsWith(".js"))
    .map((f) => f.slice(0, -3))
    .sort();
}

// In a checkout of this repository, a built-in plugin's TypeScript source
// (src/plugins/NAME.ts beside dist/src/plugins/NAME.js): what a reload
// imports, so that `pnpm dev` follows edits to them. An installed package
// has no sources: its built-in plugins do not change.
function builtInSource(name: string): string | undefined {
  const source = fileURLToPath(new URL(`../../../src/plugins/${name}.ts`, pluginDir));
  return existsSync(source) ? source : undefined;
}

/** The files a reload would import anew: the plugins named by path, and the sources of built-in ones in a checkout. */
export function pluginFiles(specs: readonly string[]): string[] {
  return specs.flatMap((spec) => (bareName.test(spec) ? (builtInSource(spec) ?? []) : [resolve(spec)]));
}

/** How to load: the first time, or a reload (which must not get the modules already imported). */
export interface LoadOptions {
  /** 0 at start; each reload attempt needs a number of its own, and gets fresh copies of the plugins' modules. */
  readonly attempt?: number;
}

/**
 * Imports each plugin module (a name from src/plugins/, or a path to a
 * JavaScript or TypeScript module), validates its options, calls its setup,
 * and registers its hooks. Throws with a clear message (with the file and
 * line where the plugin's code failed) for a missing module, a module that
 * does not load, a module without definePlugin, invalid options, a failing
 * setup, or two plugins claiming the same hook.
 */
export async function loadPlugins(
  specs: readonly string[],
  options: Readonly<Record<string, unknown>>,
  logger: Logger,
  { attempt = 0 }: LoadOptions = {},
): Promise<PluginRegistry> {
  const registry = new PluginRegistry();
  const importer = new PluginImporter(attempt);
  registry.onRetire(() => importer.close());
  try {
    for (const spec of specs) {
      const isName = bareName.test(spec);
      const source = isName && attempt > 0 ? builtInSource(spec) : undefined;
      const url = source !== undefined ? pathToFileURL(source) : isName ? new URL(`${spec}.js`, pluginDir) : pathToFileURL(resolve(spec));
      const file = fileURLToPath(url);
      if (!existsSync(file)) {
        const known = isName ? ` (built-in plugins: ${builtInPlugins().join(", ")})` : "";
        throw new Error(`unknown plugin "${spec}": no module at ${file}${known}`);
      }
      let module: { default?: unknown };
      try {
        module = (await importer.import(url, !isName || source !== undefined)) as { default?: unknown };
      } catch (e) {
        throw loadError(spec, "failed to load", file, e);
      }
      const definition = asDefinition(module.default);
      if (definition === undefined) {
        throw new Error(`plugin "${spec}" (${file}) has no default export made with definePlugin(...)`);
      }
      await setUpPlugin(registry, { spec, file, definition, options: options[spec] }, logger);
    }
  } catch (e) {
    await registry.retire(logger); // closes the plugins set up so far
    throw e;
  }
  return registry;
}

/** A plugin definition to set up, and what it is called in messages. */
export interface PluginToSetUp {
  /** The name it was given by (a built-in name, a path, or the plugin's own name). */
  readonly spec: string;
  /** Its module's file, for the place of a failure; undefined when it was handed over as an object. */
  readonly file: string | undefined;
  readonly definition: AnyPluginDefinition;
  readonly options: unknown;
}

/** Any plugin definition, whatever its options and config types. */
export interface AnyPluginDefinition {
  readonly options?: StandardSchemaV1;
  readonly config?: StandardSchemaV1;
  readonly setup: (init: PluginInit<never>) => Plugin<never> | Promise<Plugin<never>>;
}

/**
 * Validates a plugin's options, calls its setup, and adds its hooks to
 * `registry` (the loader does this for each module; the gateway simulator
 * for plugins handed to it).
 */
export async function setUpPlugin(registry: PluginRegistry, { spec, file, definition, options }: PluginToSetUp, logger: Logger): Promise<void> {
  const pluginLogger = logger.child({ plugin: spec });
  const pluginOptions = await validOptions(spec, definition.options, options);
  let plugin: Plugin<never>;
  try {
    plugin = await definition.setup({ options: pluginOptions as never, logger: pluginLogger });
  } catch (e) {
    throw loadError(spec, "failed in setup", file, e);
  }
  const where = file === undefined ? "" : ` (${file})`;
  if (typeof plugin !== "object" || plugin === null) {
    throw new Error(`plugin "${spec}"${where}: setup returned ${plugin === null ? "null" : typeof plugin}, not the plugin's hooks`);
  }
  const name = plugin.name ?? spec;
  registry.add(name, plugin, logger, definition.config);
}

// Built-in and compiled plugins at start are imported by Node itself, as in
// production. TypeScript, and every path plugin on a reload, goes through a
// tsx loader registered for this load only (its namespace): each reload
// gets fresh copies of the plugin's modules and of the files they import,
// where Node would hand back the ones it already has.
class PluginImporter {
  #tsx: { import: (specifier: string, parentURL: string) => Promise<unknown>; unregister: () => unknown } | undefined;

  constructor(readonly attempt: number) {}

  async import(url: URL, isPath: boolean): Promise<unknown> {
    if (!isPath || (this.attempt === 0 && !typeScript.has(extname(url.pathname)))) {
      try {
        return await import(url.href);
      } catch (e) {
        throw isPath && e instanceof SyntaxError ? syntaxErrorWithPlace(e, fileURLToPath(url)) : e;
      }
    }
    if (this.#tsx === undefined) {
      const { register } = await import("tsx/esm/api");
      this.#tsx = register({ namespace: `tyk-grpc-ts-plugins-${this.attempt}` });
    }
    return this.#tsx.import(url.href, import.meta.url);
  }

  close(): void {
    void this.#tsx?.unregister();
  }
}

// Node's SyntaxError for an imported module does not say where it is (only
// the uncaught-error printer does); `node --check` prints the file and line.
function syntaxErrorWithPlace(e: SyntaxError, file: string): SyntaxError {
  const checked = spawnSync(process.execPath, ["--check", file], { encoding: "utf8", timeout: 10_000 });
  const place = /^(\/[^\n]*?|file:\/\/\/[^\n]*?):(\d+)\n/.exec(checked.stderr ?? "");
  if (place !== null) {
    e.stack = `${e.name}: ${e.message}\n    at ${place[1]}:${place[2]}`;
  }
  return e;
}

/** definePlugin's object, or a bare setup function (what definePlugin returned before schemas); undefined for anything else. */
export function asDefinition(value: unknown): AnyPluginDefinition | undefined {
  if (typeof value === "function") {
    return { setup: value as AnyPluginDefinition["setup"] };
  }
  const setup = (value as { setup?: unknown } | null | undefined)?.setup;
  return typeof setup === "function" ? (value as AnyPluginDefinition) : undefined;
}

async function validOptions(spec: string, schema: StandardSchemaV1<unknown, unknown> | undefined, options: unknown): Promise<unknown> {
  if (schema === undefined) {
    return options;
  }
  const result = await schema["~standard"].validate(options);
  if (result.issues) {
    throw new Error(`plugin "${spec}": invalid pluginOptions["${spec}"]: ${issuesText(result.issues)}`);
  }
  return result.value;
}

/**
 * A plugin's failure, told with the place in the plugin's own code where it
 * happened; its stack is the original one (not a cause: pino would repeat
 * the message).
 */
function loadError(spec: string, what: string, file: string | undefined, e: unknown): Error {
  const at = file === undefined ? undefined : placeInPlugin(e, file);
  const error = new Error(`plugin "${spec}" ${what}${at === undefined ? "" : ` at ${at}`}: ${reason(e)}`);
  if (e instanceof Error && e.stack !== undefined) {
    error.stack = `Error: ${error.message}\n${e.stack
      .split("\n")
      .filter((line) => line.startsWith("    at "))
      .join("\n")}`;
  }
  return error;
}

// esbuild's errors (through tsx) say "Transform failed with 1 error:\n<place>: ERROR: <text>": the text is the reason.
function reason(e: unknown): string {
  const esbuild = e instanceof Error && e.name === "TransformError" ? /: ERROR: (.*)$/m.exec(e.message) : null;
  if (esbuild !== null) {
    return `SyntaxError: ${esbuild[1]}`;
  }
  return e instanceof Error ? `${e.name === "Error" ? "" : `${e.name}: `}${e.message}` : String(e);
}

/**
 * Where in the plugin's folder `e` was thrown: the first stack frame in it
 * (source-mapped, so a TypeScript file's own line), or the file and line a
 * syntax error names. Undefined when no frame is there (an error inside a
 * library the plugin called says where in the message).
 */
function placeInPlugin(e: unknown, file: string): string | undefined {
  const stack = e instanceof Error ? (e.stack ?? "") : "";
  const folder = dirname(file) + sep;
  for (const match of stack.matchAll(/(file:\/\/\/[^\s)]+|\/[^\s():]+):(\d+)(?::(\d+))?/g)) {
    const path = match[1]!.startsWith("file:") ? fileURLToPath(match[1]!.split("?")[0]!) : match[1]!;
    if (path.startsWith(folder) && !path.includes(`${sep}node_modules${sep}`)) {
      return `${path}:${match[2]}${match[3] === undefined ? "" : `:${match[3]}`}`;
    }
  }
  return undefined;
}
