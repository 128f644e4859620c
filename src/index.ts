/**
 * cacheness: a fast persistent cache for TypeScript, built as an Effect service layer.
 *
 * @since 0.1.0
 */

/**
 * The cache service, its layers, types and errors.
 *
 * @since 0.1.0
 */
export * as Cache from "./Cache.js"

/**
 * Key parameters hashed by content: `Key.file(path)`, `Key.dir(path)`.
 *
 * @since 0.1.0
 */
export * as Key from "./Key.js"

/**
 * @since 0.1.0
 */
export { CacheLive } from "./cache/layer.js"

/**
 * Effect Metrics of the cache: hits, misses, bytes read/written, evictions, expirations, latency.
 *
 * @since 0.1.0
 */
export * as CacheMetrics from "./CacheMetrics.js"

/**
 * Memoise a function returning an Effect: typed errors, TTL, single-flight across processes.
 *
 * @since 0.1.0
 */
export { type Cached, cached, type CachedInfo, type CachedOptions } from "./cache/cached.js"

/**
 * @since 0.1.0
 */
export {
  cacheness,
  type CachenessClient,
  type CachenessOptions,
  fromLayer as cachenessFromLayer,
  memoize,
  type Memoized,
  memoized,
  type MemoizeOptions
} from "./promise.js"

/**
 * @since 0.1.0
 */
export { CacheConfig } from "./schema/CacheConfig.js"

/**
 * @since 0.1.0
 */
export { CacheEntry, CacheStats, EpochMillis, IntegrityReport } from "./schema/CacheEntry.js"

/**
 * @since 0.1.0
 */
export { CacheKey } from "./schema/CacheKey.js"

/**
 * @since 0.1.0
 */
export { CodecError, ConfigError, KeyError, MetadataError, StorageError } from "./cache/service.js"

/**
 * @since 0.1.0
 */
export type { CacheError } from "./cache/service.js"

/**
 * SQL pull-through cache: service, table/make, layers (layerDuckDB, layerSqlite, layerPg), errors.
 *
 * @since 0.1.0
 */
export * as SqlPullThrough from "./SqlPullThrough.js"

/**
 * @since 0.1.0
 */
export { pullThrough, type PullThroughClient, type PullThroughConfig } from "./pullthrough/promise.js"

/**
 * The codec service: tag, `make`, `layer(options?)`; `Codec.handler({ format, guard, encode, decode })`
 * builds a format handler for your own type (register it with `Cache.layer({ handlers: [...] })`).
 *
 * @since 0.1.0
 */
export * as Codec from "./Codec.js"

/**
 * The key service: tag, `make`, `layer` (XXH64 through xxhash-wasm), `KeyError`.
 *
 * @since 0.1.0
 */
export * as Hasher from "./Hasher.js"

/**
 * The metadata store service: tag, `make`, `layerSqlite`, `layerJson`, `layerPg`, `layerMemory`, `MetadataError`.
 *
 * @since 0.1.0
 */
export * as MetadataStore from "./MetadataStore.js"

/**
 * The blob store service: tag, `make`, `layerFileSystem`, `layerMemory`, `layerPg`, `StorageError`.
 *
 * @since 0.1.0
 */
export * as BlobStore from "./BlobStore.js"

/**
 * nd-arrays `{ data, shape, dtype }` (NumPy dtype names) and the typed arrays stored column-wise.
 *
 * @since 0.1.0
 */
export type { DType, NdArray, TypedArray } from "./codec/formats/ndarray.js"

/**
 * An `@effect/platform` `KeyValueStore` over a namespace of the cache: `CacheKeyValueStore.layer({ namespace? })`.
 *
 * @since 0.1.0
 */
export * as CacheKeyValueStore from "./CacheKeyValueStore.js"

/**
 * An `@effect/experimental` `BackingPersistence` over the cache (each store id a namespace):
 * `CachePersistence.layer()`, for `Persistence.layerResult` and `PersistedCache`.
 *
 * @since 0.1.0
 */
export * as CachePersistence from "./CachePersistence.js"
