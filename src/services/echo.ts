import type { ServiceImpl } from "@connectrpc/connect";
import type { Echo } from "../../gen/echo_pb.js";

/** The blueprint tutorial's Echo service: `Reply` answers "You said: <message>". */
export const echoService: ServiceImpl<typeof Echo> = {
  reply(req) {
    return { message: `You said: ${req.message}` };
  },
};
