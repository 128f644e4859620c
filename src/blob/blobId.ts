/**
 * Blob ids: `<16 hex digits of the cache key>-<version token>`, e.g. `3f2a9c0d1e4b5a67-m3k9x2`.
 * Every backend validates with this one rule, so an id that works in memory works on disk (the id
 * becomes a file name: no separators, no dots, nothing a shell or file system treats specially).
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import { StorageError } from "./service.js"

/**
 * @since 0.1.0
 * @category validation
 */
export const pattern = /^[0-9a-f]{16}-[0-9a-z]{1,64}$/

/**
 * @since 0.1.0
 * @category validation
 */
export const isValid = (id: string): boolean => typeof id === "string" && pattern.test(id)

/**
 * Succeeds with nothing, or fails with `StorageError` "InvalidId".
 *
 * @since 0.1.0
 * @category validation
 */
export const validateId = (id: string, method: string): Effect.Effect<void, StorageError> =>
  isValid(id)
    ? Effect.void
    : Effect.fail(
      new StorageError({
        reason: "InvalidId",
        method,
        id: String(id),
        description: "a blob id is 16 lowercase hex digits, '-', and a version token of 1-64 of [0-9a-z]"
      })
    )
