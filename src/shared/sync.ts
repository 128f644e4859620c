/**
 * The one way a service says "cannot answer synchronously": its synchronous member returns
 * `NotSync`, and the caller takes the effectful path.
 *
 * @since 0.1.0
 */

/**
 * The sentinel of a synchronous operation that cannot settle the call here.
 *
 * @since 0.1.0
 * @category models
 */
export const NotSync: unique symbol = Symbol.for("cacheness/NotSync")

/**
 * @since 0.1.0
 * @category models
 */
export type NotSync = typeof NotSync
