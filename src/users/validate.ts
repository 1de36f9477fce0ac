import { Code, ConnectError } from "@connectrpc/connect";

/** The longest username, in characters (code points). */
export const maxUsernameLength = 128;
/** The longest password, in characters (UTF-16 units): scrypt reads all of it. */
export const maxPasswordLength = 1024;
// RFC 5321 limits a forward path to 256 octets including the angle brackets.
const maxEmailLength = 254;
// Deliberately loose: one @, no spaces, a dot in the domain. Real validation
// of an address is sending mail to it.
const emailShape = /^[^\s@]+@[^\s@.]+(\.[^\s@.]+)+$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is what it is for
const controlChars = /[\u0000-\u001f\u007f]/;

/**
 * Whether `name` is too long for a username by its length alone (in UTF-16
 * units, at most two per code point): a check that costs nothing whatever
 * its size, for names that may be many MiB long.
 */
export function longerThanAnyUsername(name: string): boolean {
  return name.length > 2 * maxUsernameLength;
}

/** Returns the username if acceptable, else throws INVALID_ARGUMENT saying why. */
export function validateUsername(username: string): string {
  // Cheap checks first: a request can carry a username of 60 MiB, and
  // counting its code points (or trimming it) blocked the event loop for
  // seconds.
  if (longerThanAnyUsername(username) || (username.length > maxUsernameLength && codePoints(username) > maxUsernameLength)) {
    throw new ConnectError(`username must be at most ${maxUsernameLength} characters`, Code.InvalidArgument);
  }
  if (username.trim() === "") {
    throw new ConnectError("username is required", Code.InvalidArgument);
  }
  if (username !== username.trim()) {
    throw new ConnectError("username must not start or end with whitespace", Code.InvalidArgument);
  }
  if (controlChars.test(username)) {
    throw new ConnectError("username must not contain control characters", Code.InvalidArgument);
  }
  return username;
}

/** Returns the password if its length is acceptable, else throws INVALID_ARGUMENT (it is never logged or echoed). */
export function validatePassword(password: string): string {
  if (password.length > maxPasswordLength) {
    throw new ConnectError(`password must be at most ${maxPasswordLength} characters`, Code.InvalidArgument);
  }
  return password;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
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
