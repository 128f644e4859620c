/**
 * The `MetadataStore` module of the public API: one row per cache entry (format, sizes, checksum,
 * times, TTL, hits, params, user metadata), stats, listing, expiry and eviction queries. The tag,
 * its `Service` type and models, `MetadataError`, `make(impl)` for your own store, and the
 * shipped stores as layers.
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import { ConfigError, MetadataError } from "./errors.js"
import * as Json from "./metadata/json.js"
import * as Memory from "./metadata/memory.js"
import * as Pg from "./metadata/pg.js"
import type { MetadataStore } from "./metadata/service.js"
import * as Sqlite from "./metadata/sqlite.js"
import * as Validate from "./shared/validate.js"

export { type Impl, make } from "./metadata/make.js"
export * from "./metadata/service.js"

/**
 * What every metadata store provides; write the primitive operations and let `make` fill in the rest.
 *
 * @since 0.1.0
 * @category models
 */
export type Service = MetadataStore.Service

/**
 * The SQLite store (the default): one database file, shared safely by every process that opens it.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (
  options: { readonly filename: string }
): Layer.Layer<MetadataStore, MetadataError | ConfigError> =>
  Validate.layerOf(
    Validate.fields("MetadataStore.layerSqlite", options, { filename: Validate.nonEmptyString }),
    Sqlite.layer
  )

/**
 * The JSON-file store: one human-readable index file, locked while written.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerJson = (
  options: { readonly filename: string }
): Layer.Layer<MetadataStore, MetadataError | ConfigError> =>
  Validate.layerOf(
    Validate.fields("MetadataStore.layerJson", options, { filename: Validate.nonEmptyString }),
    Json.layer
  )

/**
 * The PostgreSQL store, in `schema` (default "public"); `url` may be `Redacted`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (options: {
  readonly url: string | Redacted.Redacted<string>
  readonly schema?: string | undefined
  /** LISTEN for other processes' writes, so a memory tier can trust memory (see `Cache.layerFromServices`). */
  readonly changeNotifications?: boolean | undefined
}): Layer.Layer<MetadataStore, MetadataError | ConfigError> =>
  Validate.layerOf(
    Validate.fields("MetadataStore.layerPg", options, {
      url: Validate.url,
      schema: Validate.optionalString,
      changeNotifications: Validate.optionalBoolean
    }),
    ({ changeNotifications, schema, url }) =>
      Pg.layer({
        url,
        ...(schema === undefined ? {} : { schema }),
        ...(changeNotifications === undefined ? {} : { changeNotifications })
      })
  )

/**
 * A fresh, empty in-memory store per build of the layer: no disk, the same contract.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (): Layer.Layer<MetadataStore> => Memory.layerWith({})
