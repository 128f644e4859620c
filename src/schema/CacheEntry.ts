/**
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The public description of one cache entry.
 *
 * @since 0.1.0
 * @category models
 */
export const CacheEntry = Schema.Struct({
  key: Schema.String,
  namespace: Schema.String,
  description: Schema.NullOr(Schema.String),
  format: Schema.String,
  codec: Schema.String,
  storedBytes: Schema.Number,
  rawBytes: Schema.Number,
  createdAt: Schema.DateFromNumber,
  accessedAt: Schema.DateFromNumber,
  expiresAt: Schema.NullOr(Schema.DateFromNumber),
  hits: Schema.Number,
  params: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  metadata: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type CacheEntry = typeof CacheEntry.Type

/**
 * Aggregate figures for a cache.
 *
 * @since 0.1.0
 * @category models
 */
export const CacheStats = Schema.Struct({
  entries: Schema.Number,
  totalBytes: Schema.Number,
  hits: Schema.Number,
  misses: Schema.Number,
  hitRate: Schema.Number,
  directory: Schema.NullOr(Schema.String),
  maxSize: Schema.NullOr(Schema.Number),
  backend: Schema.String
})

/**
 * @since 0.1.0
 * @category models
 */
export type CacheStats = typeof CacheStats.Type

/**
 * What `verify` found and, with `repair`, fixed.
 *
 * @since 0.1.0
 * @category models
 */
export const IntegrityReport = Schema.Struct({
  /** entries examined */
  checked: Schema.Number,
  /** blob ids present in the blob store that no entry references */
  orphans: Schema.Array(Schema.String),
  /** keys whose blob is missing */
  dangling: Schema.Array(Schema.String),
  /** keys whose stored size differs from the recorded size */
  sizeMismatches: Schema.Array(Schema.String),
  /** keys whose stored bytes do not match the recorded checksum (or signature) */
  checksumMismatches: Schema.Array(Schema.String),
  /** temp files of writes abandoned by a crash (older than an hour; file-system blobs only) */
  staleTempFiles: Schema.Array(Schema.String),
  /** problems fixed (entries removed, orphan blobs and stale temp files deleted) */
  repaired: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type IntegrityReport = typeof IntegrityReport.Type
