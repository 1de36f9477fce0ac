import type { JsonValue } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { StandardSchemaV1 } from "@standard-schema/spec";
import { issuesText } from "./schema-issues.js";

/** A config_data check's answer: the schema's output, or why the config is refused. */
type Checked = { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: ConnectError };

// config_data is one string per API, sent on every call: remembering the
// answer per string spares a JSON parse and a validation per call. The
// gateway's APIs are few; the bound only stops a caller sending endless
// variants from growing the map.
const maxRemembered = 256;

/**
 * Validates the API's config_data against a plugin's `config` schema,
 * remembering the answer for each config_data string seen.
 */
export class ConfigCheck {
  readonly #answers = new Map<string | undefined, Checked>();

  constructor(
    readonly plugin: string,
    readonly schema: StandardSchemaV1,
  ) {}

  /** The schema's output for this config_data; throws a ConnectError (INTERNAL) naming the field when it fails. */
  value(raw: string | undefined): unknown {
    let checked = this.#answers.get(raw);
    if (checked === undefined) {
      checked = this.#check(raw);
      if (this.#answers.size >= maxRemembered) {
        this.#answers.clear();
      }
      this.#answers.set(raw, checked);
    }
    if (!checked.ok) {
      throw checked.error;
    }
    return checked.value;
  }

  #check(raw: string | undefined): Checked {
    let parsed: JsonValue | undefined;
    try {
      parsed = raw ? (JSON.parse(raw) as JsonValue) : undefined;
    } catch {
      return this.#refused("it is not valid JSON");
    }
    const result = this.schema["~standard"].validate(parsed);
    if (result instanceof Promise) {
      return this.#refused("the plugin's config schema validates asynchronously; config schemas must be synchronous");
    }
    return result.issues ? this.#refused(issuesText(result.issues)) : { ok: true, value: result.value };
  }

  #refused(why: string): Checked {
    return { ok: false, error: new ConnectError(`plugin "${this.plugin}": the API's config_data is invalid: ${why}`, Code.Internal) };
  }
}
