import { Code, ConnectError } from "@connectrpc/connect";

const maxUsernameLength = 128;
// RFC 5321 limits a forward path to 256 octets including the angle brackets.
const maxEmailLength = 254;
// Deliberately loose: one @, no spaces, a dot in the domain. Real validation
// of an address is sending mail to it.
const emailShape = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
const controlChars = /[\u0000-\u001f\u007f]/;

/** Returns the username if acceptable, else throws INVALID_ARGUMENT saying why. */
export function validateUsername(username: string): string {
  if (username.trim() === "") {
    throw new ConnectError("username is required", Code.InvalidArgument);
  }
  if (username !== username.trim()) {
    throw new ConnectError("username must not start or end with whitespace", Code.InvalidArgument);
  }
  if ([...username].length > maxUsernameLength) {
    throw new ConnectError(`username must be at most ${maxUsernameLength} characters`, Code.InvalidArgument);
  }
  if (controlChars.test(username)) {
    throw new ConnectError("username must not contain control characters", Code.InvalidArgument);
  }
  return username;
}

/** Returns the email if it looks like an address, else throws INVALID_ARGUMENT. */
export function validateEmail(email: string): string {
  if (email.length > maxEmailLength) {
    throw new ConnectError(`email must be at most ${maxEmailLength} characters`, Code.InvalidArgument);
  }
  if (!emailShape.test(email)) {
    throw new ConnectError(`email "${email}" is not a valid address`, Code.InvalidArgument);
  }
  return email;
}
