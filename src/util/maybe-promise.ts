// Values that are promises only when they have to be: synchronous hooks and
// uncompressed messages then cost no promise and no extra tick.

/** A value, or a promise of one. */
export type MaybePromise<T> = T | Promise<T>;

/** Whether a value is a promise (anything with a `then` method). */
export function isPromiseLike<T>(value: MaybePromise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown } | null)?.then === "function";
}

/** Applies f to a value now, or to a promise's value once it settles. */
export function then<T, U>(value: MaybePromise<T>, f: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return isPromiseLike(value) ? value.then(f) : f(value);
}
