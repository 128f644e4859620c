/**
 * The configuration of a cache: every field optional, validated when the layer is built.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { FormatHandler } from "../codec/service.js"
import type { PathHashProgress } from "../key/service.js"
import type { MetadataTable } from "./MetadataTable.js"

/**
 * A `Duration.DurationInput`: milliseconds, `"24 hours"`, a `Duration`, …
 *
 * @since 0.1.0
 * @category schemas
 */
export const DurationInput = Schema.declare(
  (u: unknown): u is Duration.DurationInput => Option.isSome(Duration.decodeUnknown(u)),
  {
    identifier: "DurationInput",
    description: `a duration: milliseconds as a number, a string like "24 hours", or a Duration`
  }
)

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  byte: 1,
  bytes: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tb: 1024 ** 4,
  tib: 1024 ** 4
}

/**
 * Parses a size: a byte count or a string with a 1024-based unit (`"5 GB"` = 5 × 1024³ bytes).
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseSize = (input: number | string): Option.Option<number> => {
  if (typeof input === "number") {
    return Number.isFinite(input) && input >= 0 ? Option.some(Math.floor(input)) : Option.none()
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(input)
  if (match === null) return Option.none()
  const unit = SIZE_UNITS[match[2].toLowerCase()]
  return unit === undefined ? Option.none() : Option.some(Math.floor(Number(match[1]) * unit))
}

/**
 * A size in bytes or with a unit, e.g. `"5 GB"`, `"16 KiB"`, `1048576`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SizeInput = Schema.Union(Schema.Number, Schema.String).pipe(
  Schema.filter((u) => Option.isSome(parseSize(u)), {
    message: () => `a size: bytes as a non-negative number, or a string like "5 GB" or "16 KiB"`
  })
)

/**
 * A secret: a string, bytes, or a `Redacted` of either.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Secret = Schema.Union(
  Schema.String.pipe(Schema.minLength(1)),
  Schema.Uint8ArrayFromSelf,
  Schema.declare((u: unknown): u is Redacted.Redacted<string | Uint8Array> => Redacted.isRedacted(u), {
    identifier: "Redacted"
  })
)

const CompressionFields = {
  codec: Schema.optional(Schema.Literal("lz4", "zstd", "gzip", "brotli", "none")),
  level: Schema.optional(Schema.Int),
  shuffle: Schema.optional(Schema.Boolean),
  /** Payloads (and array blocks) smaller than this are stored raw. */
  minSize: Schema.optional(Schema.Number.pipe(Schema.int(), Schema.nonNegative())),
  /** Stored raw unless compression saves at least this fraction (0.03 = 3%). */
  minSavings: Schema.optional(Schema.Number.pipe(Schema.between(0, 1)))
}

/**
 * A format handler (see `Codec.handler`), checked by shape when the configuration is decoded.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FormatHandlerSchema = Schema.declare(
  (u: unknown): u is FormatHandler => {
    if (typeof u !== "object" || u === null) return false
    const h = u as Partial<FormatHandler>
    return typeof h.format === "string" && typeof h.version === "number" && typeof h.kind === "string" &&
      typeof h.guard === "function" && typeof h.encode === "function" && typeof h.decode === "function"
  },
  {
    identifier: "FormatHandler",
    description: "a format handler: { format, version, kind, guard, encode, decode } (see Codec.handler)"
  }
)

/**
 * A progress callback of path hashing: `(progress: PathHashProgress) => void`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ProgressCallback = Schema.declare(
  (u: unknown): u is (progress: PathHashProgress) => void => typeof u === "function",
  { identifier: "ProgressCallback", description: "a function receiving path hashing progress" }
)

/**
 * @since 0.1.0
 * @category schemas
 */
export const MetadataBackend = Schema.Literal("sqlite", "json", "postgres", "memory")

/**
 * @since 0.1.0
 * @category schemas
 */
export const BlobBackend = Schema.Literal("filesystem", "memory", "postgres", "s3")

const RedactedString = Schema.declare(
  (u: unknown): u is Redacted.Redacted<string> => Redacted.isRedacted(u) && typeof Redacted.value(u) === "string",
  { identifier: "Redacted", description: "a Redacted string" }
)

/**
 * Where `blobs: "s3"` keeps values: a bucket of S3 or an S3-compatible server (MinIO, R2, …).
 *
 * @since 0.1.0
 * @category schemas
 */
export const S3Config = Schema.Struct({
  bucket: Schema.String.pipe(Schema.minLength(1)),
  /** Prepended to every object name, e.g. `"team/cache/"`. Default `""`. */
  prefix: Schema.optional(Schema.String),
  /** A non-AWS server, e.g. `"http://127.0.0.1:9000"`. Default the SDK's AWS endpoint. */
  endpoint: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** Default the SDK's resolution (`AWS_REGION`, profile); `us-east-1` with an `endpoint`. */
  region: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** The bucket in the path rather than the host name (MinIO, s3rver). Default false. */
  forcePathStyle: Schema.optional(Schema.Boolean),
  /** Values stored at least this large go up as a multipart upload. Default 16 MiB; at least 5 MiB. */
  multipartThreshold: Schema.optional(SizeInput),
  /** Default the SDK's provider chain (environment, profile, instance role). */
  credentials: Schema.optional(Schema.Struct({
    accessKeyId: Schema.Union(Schema.String.pipe(Schema.minLength(1)), RedactedString),
    secretAccessKey: Schema.Union(Schema.String.pipe(Schema.minLength(1)), RedactedString),
    sessionToken: Schema.optional(Schema.Union(Schema.String.pipe(Schema.minLength(1)), RedactedString))
  }))
})

/**
 * `CacheConfig`: every field optional; defaults are listed in docs/CONFIGURATION.md.
 *
 * @since 0.1.0
 * @category schemas
 */
export const CacheConfig = Schema.Struct({
  /** Where the cache lives. Default `./.cacheness`, resolved when the layer is built. */
  directory: Schema.optional(Schema.String.pipe(Schema.minLength(1))),
  /** TTL of entries put without one. Default 24 hours; `null` never expires. */
  defaultTtl: Schema.optional(Schema.NullOr(DurationInput)),
  /** Size limit; least-recently-used entries are evicted down to 80% of it. Default 5 GB; `null` unlimited. */
  maxSize: Schema.optional(Schema.NullOr(SizeInput)),
  /** Where entry metadata lives. Default `sqlite`. */
  metadataBackend: Schema.optional(MetadataBackend),
  /** Where large values live. Default `filesystem` (`memory` with the memory metadata backend, `s3` when `s3` is set). */
  blobs: Schema.optional(BlobBackend),
  /** PostgreSQL connection for the `postgres` backends. */
  postgres: Schema.optional(Schema.Struct({
    url: Schema.Union(
      Schema.String,
      Schema.declare((u: unknown): u is Redacted.Redacted<string> => Redacted.isRedacted(u))
    ),
    /** Schema of the cache's tables, created when missing. Default `public`. */
    schema: Schema.optional(Schema.String.pipe(Schema.pattern(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/))),
    /** Pool size of the metadata store. Default 10. */
    maxConnections: Schema.optional(Schema.Int.pipe(Schema.positive())),
    /** How long an idle pooled connection is kept. Default 30 seconds. */
    idleTimeout: Schema.optional(DurationInput),
    /** How long connecting may take. Default 10 seconds. */
    connectTimeout: Schema.optional(DurationInput)
  })),
  /** The bucket of `blobs: "s3"`; setting it makes `s3` the default `blobs`. */
  s3: Schema.optional(S3Config),
  /** Custom metadata tables (`Cache.metadataTable(...)` handles) to create and accept in `put`. */
  metadataTables: Schema.optional(Schema.Array(
    Schema.declare((u: unknown): u is MetadataTable => Predicate.hasProperty(u, "_tag") && u._tag === "MetadataTable", {
      identifier: "MetadataTable",
      description: "a table handle from Cache.metadataTable(name, schema)"
    })
  )),
  /** Remove expired entries when the cache opens. Default true. */
  cleanupOnOpen: Schema.optional(Schema.Boolean),
  /** How often expired entries are removed and the size limit enforced in the background. Default 10 minutes. */
  cleanupInterval: Schema.optional(DurationInput),
  /** Verify the checksum of stored bytes on every read. Default true. */
  verifyIntegrity: Schema.optional(Schema.Boolean),
  /** Keep a description of each key's params beside the entry (for listing and filtering). Default true. */
  storeKeyParams: Schema.optional(Schema.Boolean),
  /**
   * Compression of stored values: `codec` (default lz4), `level`, `shuffle` (byte-shuffle numeric
   * arrays and tables first, default true), `minSize`, `minSavings`, and `byKind` overriding any of
   * them per kind of value: `array` (typed arrays, nd-arrays), `table` (Arrow, Polars), `object`
   * (JSON, v8, schema values), `bytes` (Uint8Array, Buffer), or a user handler's own kind.
   */
  compression: Schema.optional(Schema.Struct({
    ...CompressionFields,
    byKind: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Struct(CompressionFields) }))
  })),
  /**
   * How tables (Arrow, Polars) are written: `ipc` (default; Arrow IPC, byte-shuffled and
   * compressed in blocks) or `parquet` (Parquet through parquet-wasm, or Polars' own writer; pages
   * compressed with the `table` kind's codec). Stored values are read by the format their header
   * names, whatever this says.
   */
  tables: Schema.optional(Schema.Literal("ipc", "parquet")),
  /**
   * Format handlers for your own types, tried before the built-in ones (see `Codec.handler`).
   */
  handlers: Schema.optional(Schema.Array(FormatHandlerSchema)),
  /** Values up to this size are stored inline in the metadata row. Default 16 KiB. */
  inlineThreshold: Schema.optional(SizeInput),
  /** Hash file and directory key params by content. Default true; false keys them by path string. */
  hashPathContent: Schema.optional(Schema.Boolean),
  /** How file and directory key params are hashed (see docs/PATH_KEYS.md). */
  pathHashing: Schema.optional(Schema.Struct({
    /** Reuse content hashes of files whose stat fingerprint is unchanged. Default true. */
    fingerprints: Schema.optional(Schema.Boolean),
    /** Files read at once in a large tree. Default 8. */
    concurrency: Schema.optional(Schema.Int.pipe(Schema.between(1, 256))),
    /** A tree with at least this many files is read in parallel. Default 80. */
    parallelFiles: Schema.optional(Schema.Int.pipe(Schema.nonNegative())),
    /** A tree with at least this many bytes is read in parallel. Default 4 GB. */
    parallelBytes: Schema.optional(SizeInput),
    /** Called as files are hashed: files and bytes done of the path being hashed (e.g. a CLI progress bar). */
    onProgress: Schema.optional(ProgressCallback)
  })),
  /** HMAC key: entries are signed and a tampered entry is rejected. */
  signing: Schema.optional(Schema.Struct({ key: Secret })),
  /**
   * `private`: the cache directory is created 0700 and its files 0600, so other users cannot read
   * or plant entries. Default `default` (the process umask decides).
   */
  permissions: Schema.optional(Schema.Literal("default", "private")),
  /**
   * A memory tier in front of the stores: decoded values of recent hits served from process
   * memory, bounded by `maxEntries` (default 10,000) and `maxSize` (default 64 MiB), coherent with
   * other processes (`maxStaleness`, default 0: checked on every read). Off unless given.
   */
  memory: Schema.optional(Schema.Struct({
    maxEntries: Schema.optional(Schema.Number),
    maxSize: Schema.optional(SizeInput),
    maxStaleness: Schema.optional(DurationInput)
  }))
})

/**
 * @since 0.1.0
 * @category models
 */
export type CacheConfig = typeof CacheConfig.Encoded
