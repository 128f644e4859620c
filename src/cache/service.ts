/**
 * The public cache: composes Hasher, Codec, MetadataStore and BlobStore; owns TTL, eviction,
 * integrity and statistics.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import type { CompressionCodec, FormatHandler } from "../codec/service.js"
import type { PathHashProgress } from "../key/service.js"
import type { EntryOrder } from "../metadata/service.js"
import type { CacheEntry, CacheStats, IntegrityReport } from "../schema/CacheEntry.js"
import type { CacheKey, KeyInput, KeyParams } from "../schema/CacheKey.js"
import type { MetadataFilter, MetadataTable, QueryMetadataOptions } from "../schema/MetadataTable.js"

export { CodecError, ConfigError, KeyError, MetadataError, StorageError } from "../errors.js"
import type { CacheError, ConfigError, KeyError, MetadataError } from "../errors.js"

export type { CacheError } from "../errors.js"

/**
 * Compression settings as configured (unset fields fall back; see `CacheConfig.compression`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedCompression {
  readonly codec?: CompressionCodec | undefined
  readonly level?: number | undefined
  readonly shuffle?: boolean | undefined
  readonly minSize?: number | undefined
  readonly minSavings?: number | undefined
}

/**
 * The configuration after validation and defaults: durations in milliseconds, sizes in bytes.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResolvedConfig {
  /** Absolute path, or `null` for a cache without a directory (memory). */
  readonly directory: string | null
  readonly defaultTtl: number | null
  readonly maxSize: number | null
  readonly metadataBackend: "sqlite" | "json" | "postgres" | "memory"
  readonly blobs: "filesystem" | "memory" | "postgres" | "s3"
  readonly cleanupOnOpen: boolean
  readonly cleanupInterval: number
  readonly verifyIntegrity: boolean
  readonly storeKeyParams: boolean
  readonly compression: ResolvedCompression & {
    readonly codec: CompressionCodec
    readonly shuffle: boolean
    readonly byKind: Readonly<Record<string, ResolvedCompression>> | undefined
  }
  /** User format handlers, tried before the built-in ones. */
  readonly handlers: ReadonlyArray<FormatHandler>
  /** How tables (Arrow, Polars) are written (both formats are always read). */
  readonly tables: "ipc" | "parquet"
  readonly inlineThreshold: number
  readonly hashPathContent: boolean
  /** The HMAC key entries are signed with, or `null` (checksums only). */
  readonly signing: { readonly key: Redacted.Redacted<Uint8Array> } | null
  /** `private`: directories 0700, files 0600. */
  readonly permissions: "default" | "private"
  /** Connection of the `postgres` backends; `null` when neither uses PostgreSQL. */
  readonly postgres: ResolvedPostgres | null
  /** The bucket of the `s3` blob store; `null` unless `blobs` is `s3`. */
  readonly s3?: ResolvedS3 | null | undefined
  /** Registered custom metadata tables. */
  readonly metadataTables: ReadonlyArray<MetadataTable>
  readonly pathHashing: {
    readonly fingerprints: boolean
    readonly concurrency: number
    readonly parallelFiles: number
    readonly parallelBytes: number
    readonly onProgress: ((progress: PathHashProgress) => void) | undefined
  }
  /** Opened for looking only (the CLI's read commands): nothing on disk is created or changed. */
  readonly readOnly?: boolean | undefined
  /** The memory tier (`memory` option, see `cache/memoryTier.ts`); `null` or absent: none. */
  readonly memory?:
    | {
      readonly maxEntries: number
      readonly maxSize: number
      readonly maxStaleness: number
    }
    | null
    | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ResolvedS3 {
  readonly bucket: string
  readonly prefix: string
  readonly endpoint: string | undefined
  readonly region: string | undefined
  readonly forcePathStyle: boolean
  readonly multipartThreshold: number | undefined
  readonly credentials: {
    readonly accessKeyId: Redacted.Redacted<string>
    readonly secretAccessKey: Redacted.Redacted<string>
    readonly sessionToken?: Redacted.Redacted<string> | undefined
  } | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ResolvedPostgres {
  readonly url: Redacted.Redacted<string>
  /** Schema of the cache's tables (several caches can share one database). Default `public`. */
  readonly schema: string
  readonly maxConnections: number | undefined
  readonly idleTimeout: number | undefined
  readonly connectTimeout: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PutOptions<A = unknown, I = unknown> {
  /** Overrides the default TTL; `null` never expires. */
  readonly ttl?: Duration.DurationInput | null | undefined
  /**
   * How long after its TTL the entry may still be served stale (`get(key, { allowStale: true })`,
   * `cached`'s `staleWhileRevalidate` / `staleIfError`): fresh until `ttl`, stale until
   * `ttl + grace`, gone after. Default 0. `has` and a plain `get` see only fresh entries.
   */
  readonly grace?: Duration.DurationInput | undefined
  readonly description?: string | undefined
  /**
   * The namespace the entry lives in: part of its identity (the same params in two namespaces are
   * two entries), and what `list`, `stats`, `invalidateWhere` and `clear`-like bulk removals select
   * on. Default `""`, whose keys are the params' keys as they always were. The `CacheKey` returned
   * is the entry's full identity: it reads the entry back without a namespace.
   */
  readonly namespace?: string | undefined
  /**
   * User metadata. A key naming a registered custom metadata table attaches a row to that table
   * (validated against its schema; a mismatch fails the put and stores nothing); every other key
   * is free-form JSON stored beside the entry.
   */
  readonly metadata?: Record<string, unknown> | undefined
  /** Encode through this Schema; a value that does not match fails with a `CodecError`. */
  readonly schema?: Schema.Schema<A, I, never> | undefined
  /**
   * Labels for bulk invalidation (`invalidateTags`) and listing (`list({ tag })`): non-empty
   * strings; not part of the key. Tags are not covered by a signature (they only ever select
   * entries to remove or list).
   */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * One entry of `putMany`: the key, the value and its `put` options.
 *
 * @since 0.1.0
 * @category models
 */
export type PutManyEntry = readonly [key: KeyInput, value: unknown, options?: PutOptions<any, any>]

/**
 * @since 0.1.0
 * @category models
 */
export interface GetOptions<A = unknown, I = unknown> {
  /** Decode and validate through this Schema; stored data that does not match is a miss. */
  readonly schema?: Schema.Schema<A, I, never> | undefined
  /** The namespace of the entry named by params (see `PutOptions.namespace`). Default `""`. */
  readonly namespace?: string | undefined
  /** Serve an expired entry still inside its grace (see `PutOptions.grace`). Default false. */
  readonly allowStale?: boolean | undefined
}

/**
 * Options of the operations that name one entry by its key (`key`, `has`, `touch`,
 * `invalidate`): the namespace it lives in. With named parameters the key is theirs in that
 * namespace; a `CacheKey` is already an entry's full identity, and giving it with a namespace
 * other than `""` is a `KeyError`.
 *
 * @since 0.1.0
 * @category models
 */
export interface NamespaceOptions {
  /** Default `""`, the default namespace. */
  readonly namespace?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  readonly limit?: number | undefined
  readonly offset?: number | undefined
  readonly namespace?: string | undefined
  /**
   * Default: insertion order, the order in which entries were first put (an overwrite keeps the
   * entry's place, as diskcache does; an entry removed and put again goes last). Entries with equal
   * values of `orderBy` keep their insertion order (reversed with `descending`).
   */
  readonly orderBy?: EntryOrder | undefined
  readonly descending?: boolean | undefined
  /** Only entries carrying this tag. */
  readonly tag?: string | undefined
}

/**
 * Selects entries for `invalidateWhere`; all given conditions must hold.
 *
 * @since 0.1.0
 * @category models
 */
export interface InvalidateFilter {
  readonly namespace?: string | undefined
  /** Entries whose stored key params contain these values. */
  readonly params?: KeyParams | undefined
  readonly createdBefore?: Date | number | undefined
  readonly expiredOnly?: boolean | undefined
}

/**
 * Progress of a long operation.
 *
 * @since 0.1.0
 * @category models
 */
export interface Progress {
  readonly done: number
  readonly total: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface VerifyOptions {
  /** Remove what is broken: dangling and mismatched entries, orphan blobs. Default false. */
  readonly repair?: boolean | undefined
  readonly onProgress?: ((progress: Progress) => void) | undefined
}

/**
 * Options of `stats`. Any other field is a `ConfigError`.
 *
 * @since 0.1.0
 * @category models
 */
export interface StatsOptions {
  /**
   * Count one namespace: `entries` and `totalBytes` are that namespace's, read from counters the
   * metadata store keeps per namespace (never a scan of the entries). `hits`, `misses` and
   * `hitRate` stay the whole cache's: they are not counted per namespace.
   */
  readonly namespace?: string | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface PruneOptions {
  readonly onProgress?: ((progress: Progress) => void) | undefined
}

/**
 * What `prune` evicted.
 *
 * @since 0.1.0
 * @category models
 */
export interface PruneResult {
  readonly entries: number
  readonly bytes: number
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace Cache {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The key of named parameters (16 hex digits), in a namespace (default `""`). */
    readonly key: (params: KeyParams, options?: NamespaceOptions) => Effect.Effect<CacheKey, KeyError | ConfigError>
    /** Stores a value; returns its key. */
    readonly put: <A = unknown, I = unknown>(
      key: KeyInput,
      value: A,
      options?: PutOptions<A, I>
    ) => Effect.Effect<CacheKey, CacheError>
    /** The stored value, `None` on a miss. A stored `null` is `Some(null)`. */
    readonly get: {
      (key: KeyInput): Effect.Effect<Option.Option<unknown>, CacheError>
      <A, I>(key: KeyInput, options: GetOptions<A, I>): Effect.Effect<Option.Option<A>, CacheError>
    }
    /** Like `get`, with the entry and whether it is served stale (past its TTL, inside its grace). */
    readonly getWithMetadata: {
      (key: KeyInput): Effect.Effect<
        Option.Option<{ readonly value: unknown; readonly entry: CacheEntry; readonly stale: boolean }>,
        CacheError
      >
      <A, I>(
        key: KeyInput,
        options: GetOptions<A, I>
      ): Effect.Effect<
        Option.Option<{ readonly value: A; readonly entry: CacheEntry; readonly stale: boolean }>,
        CacheError
      >
    }
    /** Whether a fresh entry exists (a stale one is not). Does not count as a hit or miss. */
    readonly has: (key: KeyInput, options?: NamespaceOptions) => Effect.Effect<boolean, CacheError>
    /** Renews a live entry's TTL (default TTL when omitted); `false` when absent or expired. */
    readonly touch: (
      key: KeyInput,
      ttl?: Duration.DurationInput | null,
      options?: NamespaceOptions
    ) => Effect.Effect<boolean, CacheError>
    /**
     * The stored values of many keys, in their order (`None` for a miss), each counted as `get`
     * counts it: one metadata query for the batch, blobs read with bounded concurrency.
     */
    readonly getMany: {
      (keys: Iterable<KeyInput>): Effect.Effect<ReadonlyArray<Option.Option<unknown>>, CacheError>
      <A, I>(
        keys: Iterable<KeyInput>,
        options: GetOptions<A, I>
      ): Effect.Effect<ReadonlyArray<Option.Option<A>>, CacheError>
    }
    /**
     * Stores many values in one metadata transaction and returns their keys in order. Blobs are
     * written first; a bad entry (invalid options, a value that cannot be encoded, a row breaking
     * a constraint) fails the call with its typed error, and then nothing is stored and no blob
     * is left behind. The size limit and signing apply as for `put`.
     */
    readonly putMany: (entries: Iterable<PutManyEntry>) => Effect.Effect<ReadonlyArray<CacheKey>, CacheError>
    /** Removes the entries of these keys (one removal); returns how many existed. */
    readonly invalidateMany: (keys: Iterable<KeyInput>) => Effect.Effect<number, CacheError>
    /** Removes every entry carrying any of these tags, with their blobs; returns how many. */
    readonly invalidateTags: (tags: ReadonlyArray<string>) => Effect.Effect<number, CacheError>
    /** Removes one entry; `true` when it existed. */
    readonly invalidate: (key: KeyInput, options?: NamespaceOptions) => Effect.Effect<boolean, CacheError>
    /** Removes the entries matching the filter; returns how many. */
    readonly invalidateWhere: (filter: InvalidateFilter) => Effect.Effect<number, CacheError>
    /** Removes every entry; returns how many. */
    readonly clear: () => Effect.Effect<number, CacheError>
    /** Removes entries past their grace (expired, and no longer servable stale) and their blobs; returns how many. */
    readonly cleanupExpired: () => Effect.Effect<number, CacheError>
    readonly list: (options?: ListOptions) => Effect.Effect<ReadonlyArray<CacheEntry>, CacheError>
    readonly stats: (options?: StatsOptions) => Effect.Effect<CacheStats, CacheError>
    /**
     * Evicts least-recently-used entries until the cache holds at most `target` stored bytes
     * (a byte count or a size like `"500 MB"`).
     */
    readonly prune: (target: number | string, options?: PruneOptions) => Effect.Effect<PruneResult, CacheError>
    /** Checks every entry against its stored bytes and finds orphan blobs. */
    readonly verify: (options?: VerifyOptions) => Effect.Effect<IntegrityReport, CacheError>
    /**
     * Live entries with their row in a registered custom metadata table, filtered on its columns
     * (equality, ranges, `in`); ordered by creation time unless `orderBy` names a column.
     */
    readonly queryMetadata: <A, I>(
      table: MetadataTable<A, I>,
      filter?: MetadataFilter<A>,
      options?: Omit<QueryMetadataOptions<A>, "where">
    ) => Effect.Effect<ReadonlyArray<{ readonly entry: CacheEntry; readonly row: A }>, CacheError>
    /**
     * The SQL client of the metadata database (SQLite or PostgreSQL) for raw queries over the
     * entries and custom tables; fails with a `MetadataError` "Unsupported" on memory and JSON.
     */
    readonly sql: Effect.Effect<SqlClient.SqlClient, MetadataError>
  }
}

/**
 * The cache service tag.
 *
 * @since 0.1.0
 * @category tags
 */
export class Cache extends Context.Tag("cacheness/Cache")<Cache, Cache.Service>() {}
