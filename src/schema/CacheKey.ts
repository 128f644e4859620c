/**
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A cache key: the 16-hex XXH64 digest of the canonical encoding of named parameters.
 *
 * @since 0.1.0
 * @category models
 */
export const CacheKey = Schema.String.pipe(
  Schema.pattern(/^[0-9a-f]{16}$/, { message: () => "a cache key is 16 lowercase hex digits" }),
  Schema.brand("cacheness/CacheKey")
)

/**
 * @since 0.1.0
 * @category models
 */
export type CacheKey = typeof CacheKey.Type

/**
 * Named parameters that identify a cached value. Order of names never matters.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyParams = { readonly [name: string]: unknown }

/**
 * What every cache operation accepts as a key: named parameters or a `CacheKey`.
 *
 * @since 0.1.0
 * @category models
 */
export type KeyInput = KeyParams | CacheKey

/**
 * @since 0.1.0
 * @category guards
 */
export const isCacheKey: (u: unknown) => u is CacheKey = Schema.is(CacheKey)

/**
 * A JSON-safe description of key parameters, stored beside each entry for listing and filtering.
 *
 * @since 0.1.0
 * @category models
 */
export type ParamsDescription = { readonly [name: string]: unknown }
