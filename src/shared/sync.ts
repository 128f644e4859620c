/**
 * The one answer of every synchronous fast path that cannot answer without effects: the caller
 * runs the effectful operation instead.
 *
 * @since 0.1.0
 */

/**
 * The one answer of every synchronous fast path that cannot answer without effects: the caller runs the effectful operation instead.
 *
 * @since 0.1.0
 * @category symbols
 */
export const NotSync: unique symbol = Symbol.for("cacheness/NotSync")

/**
 * The one answer of every synchronous fast path that cannot answer without effects: the caller runs the effectful operation instead.
 *
 * @since 0.1.0
 * @category symbols
 */
export type NotSync = typeof NotSync
