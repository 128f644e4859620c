/**
 * Canonical, stable cache keys from named parameters, and content hashes of bytes.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import type { CacheKey, KeyParams, ParamsDescription } from "../schema/CacheKey.js"

/**
 * A key could not be derived from the given parameters.
 *
 * @since 0.1.0
 * @category errors
 */
export class KeyError extends Schema.TaggedError<KeyError>("cacheness/KeyError")("KeyError", {
  reason: Schema.Literal("Unhashable", "InvalidKey", "Unreadable"),
  method: Schema.String,
  /** where inside the key the problem is, e.g. `params.model.fit` */
  path: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.method}: ${this.path}: ${this.description}`
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace Hasher {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The key of named parameters: XXH64 of their canonical encoding, as 16 hex digits. */
    readonly key: (params: KeyParams) => Effect.Effect<CacheKey, KeyError>
    /** A JSON-safe description of the parameters, stored beside the entry. */
    readonly describe: (params: KeyParams) => Effect.Effect<ParamsDescription, KeyError>
    /** XXH64 of bytes as 16 hex digits (checksums). Synchronous: the hasher is ready once built. */
    readonly hashBytes: (bytes: Uint8Array) => string
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Hasher extends Context.Tag("cacheness/Hasher")<Hasher, Hasher.Service>() {}
