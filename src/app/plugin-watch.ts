import { type FSWatcher, watch } from "node:fs";
import { dirname } from "node:path";
import type { Logger } from "../observability/logger.js";

// An editor saves a file as several events (write, rename, chmod), and a
// `git checkout` touches many files: one reload for the lot.
const settleMs = 150;

/**
 * Watches the folders of the plugin files (recursively, without
 * node_modules and dot-folders) and calls `reload` once changes have settled.
 * Returns a function that stops watching.
 */
export function watchPluginFiles(files: readonly string[], reload: () => void, logger: Logger): () => void {
  const folders = [...new Set(files.map((f) => dirname(f)))];
  let timer: NodeJS.Timeout | undefined;
  const changed = (file: string | null) => {
    if (file !== null && /(^|[/\\])(node_modules|\.[^/\\]+)([/\\]|$)/.test(file)) {
      return;
    }
    clearTimeout(timer);
    timer = setTimeout(reload, settleMs);
  };
  const watchers: FSWatcher[] = folders.map((folder) =>
    watch(folder, { recursive: true, persistent: false }, (_event, file) => changed(file)).on("error", (err) =>
      logger.error({ err, folder }, "watching plugin files failed: no more reloads on change"),
    ),
  );
  logger.info({ folders }, "watching plugin files: a change reloads the plugins");
  return () => {
    clearTimeout(timer);
    watchers.forEach((w) => w.close());
  };
}
