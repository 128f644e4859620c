/**
 * The members of an implementation that are given: a `make(impl)` spreads them over its defaults,
 * and a member written out as `undefined` must leave the default in place, not erase it.
 *
 * @since 0.1.0
 */

/**
 * `impl` without its `undefined` members (a shallow copy of the own enumerable ones).
 *
 * @since 0.1.0
 * @category utils
 */
export const defined = <T extends object>(impl: T): T =>
  Object.fromEntries(Object.entries(impl).filter(([, value]) => value !== undefined)) as T
