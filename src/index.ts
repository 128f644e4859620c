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
 * @since 0.1.0
 */
export { CacheLive } from "./layers/CacheLayer.js"

/**
 * Effect Metrics of the cache: hits, misses, bytes read/written, evictions, expirations, latency.
 *
 * @since 0.1.0
 */
export * as CacheMetrics from "./CacheMetrics.js"

/**
 * @since 0.1.0
 */
export { cacheness, type CachenessClient, fromLayer as cachenessFromLayer } from "./promise.js"

/**
 * @since 0.1.0
 */
export { CacheConfig } from "./schema/CacheConfig.js"

/**
 * @since 0.1.0
 */
export { CacheEntry, CacheStats, IntegrityReport } from "./schema/CacheEntry.js"

/**
 * @since 0.1.0
 */
export { CacheKey } from "./schema/CacheKey.js"

/**
 * @since 0.1.0
 */
export { CodecError, ConfigError, KeyError, MetadataError, StorageError } from "./services/Cache.js"

/**
 * @since 0.1.0
 */
export type { CacheError } from "./services/Cache.js"

/**
 * SQL pull-through cache: service, table/make, layers (layerDuckDB, layerSqlite, layerPg), errors.
 *
 * @since 0.1.0
 */
export * as SqlPullThrough from "./SqlPullThrough.js"

/**
 * @since 0.1.0
 */
export { pullThrough, type PullThroughClient, type PullThroughConfig } from "./pullThrough.js"
