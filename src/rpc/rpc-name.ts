import type { DescMethod } from "@bufbuild/protobuf";

/** A method as log lines name it: "package.Service/Method" (its path without the slash). */
export function rpcName(method: DescMethod): string {
  return `${method.parent.typeName}/${method.name}`;
}
