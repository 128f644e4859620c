/**
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A point in time as milliseconds since 1970-01-01 UTC — what `Clock.currentTimeMillis` and
 * `Date.now()` give; `new Date(t)` or `DateTime.unsafeMake(t)` when a richer value is wanted.
 *
 * @since 0.1.0
 * @category models
 */
export const EpochMillis = Schema.Number.annotations({
  identifier: "EpochMillis",
  description: "milliseconds since 1970-01-01T00:00:00Z"
})

/**
 * The public description of one cache entry. Times are `EpochMillis` numbers rather than `Date`s:
 * an entry is plain, serialisable data, and each time costs 16 bytes where a `Date` takes 112 — with
 * Dates, the times were about half the memory of a 10,000-entry `list()` result (docs/PERFORMANCE.md).
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
  createdAt: EpochMillis,
  accessedAt: EpochMillis,
  expiresAt: Schema.NullOr(EpochMillis),
  /**
   * Until when the entry may be served stale (`get(key, { allowStale: true })`, `cached`'s
   * `staleWhileRevalidate` / `staleIfError`): `expiresAt` plus the put's `grace`; `null` never.
   */
  staleUntil: Schema.NullOr(EpochMillis),
  hits: Schema.Number,
  params: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  metadata: Schema.NullOr(Schema.Record({ key: Schema.String, value: Schema.Unknown })),
  /** The entry's tags (`put(..., { tags })`), `[]` when none. */
  tags: Schema.Array(Schema.String)
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
  /** blob ids present in the blob store that no entry references (on the file system: older than an hour, so not a put in flight) */
  orphans: Schema.Array(Schema.String),
  /** keys whose blob is missing or can never be read (a directory in its place, an invalid blob id) */
  dangling: Schema.Array(Schema.String),
  /** keys whose stored size differs from the recorded size */
  sizeMismatches: Schema.Array(Schema.String),
  /** keys whose stored bytes do not match the recorded checksum (or signature) */
  checksumMismatches: Schema.Array(Schema.String),
  /** temp files of writes abandoned by a crash (older than an hour; file-system blobs only) */
  staleTempFiles: Schema.Array(Schema.String),
  /** problems fixed (entries removed, recorded sizes corrected, orphan blobs and stale temp files deleted) */
  repaired: Schema.Number
})

/**
 * @since 0.1.0
 * @category models
 */
export type IntegrityReport = typeof IntegrityReport.Type
