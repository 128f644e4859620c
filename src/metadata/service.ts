/**
 * One row per cache entry: format, sizes, checksum, times, TTL, hits, key params and user metadata,
 * plus the persisted hit/miss counters. Small values live inline in the row.
 *
 * @since 0.1.0
 */
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"
import type { CacheEntry } from "../schema/CacheEntry.js"
import type { NotSync } from "../shared/sync.js"

import { MetadataError } from "../errors.js"

export { MetadataError }

/**
 * One stored entry as the store keeps it. Times are epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface EntryRecord {
  readonly key: string
  readonly namespace: string
  readonly description: string | null
  readonly format: string
  readonly codec: string
  readonly storedBytes: number
  readonly rawBytes: number
  /** XXH64 (or HMAC, when signing) of the stored bytes. */
  readonly checksum: string
  /** Where a large value lives in the blob store; `null` when the value is inline. */
  readonly blobId: string | null
  /** The stored bytes of a small value; `null` when the value is in the blob store. */
  readonly inline: Uint8Array | null
  readonly createdAt: number
  readonly accessedAt: number
  readonly expiresAt: number | null
  /**
   * Until when the entry may still be served stale (epoch ms): `expiresAt` plus the put's grace,
   * `null` when it never expires. Absent (a store written before grace existed) means `expiresAt`:
   * no grace. The entry is removed by cleanup only once this has passed.
   */
  readonly staleUntil?: number | null | undefined
  readonly hits: number
  /** JSON text of the described key params, or `null` when not stored. */
  readonly params: string | null
  /** JSON text of user metadata, or `null`. */
  readonly metadata: string | null
  /**
   * Tags of the entry (`invalidateTags`, `list({ tag })`); absent or empty when it has none. Kept
   * in a tag index by every store, so removal by tag never scans the entries.
   */
  readonly tags?: ReadonlyArray<string> | undefined
}

/**
 * The part of an entry a read needs: where the bytes are, how to check them, when they expire.
 *
 * @since 0.1.0
 * @category models
 */
export type StoredValue = Pick<
  EntryRecord,
  "key" | "storedBytes" | "checksum" | "blobId" | "inline" | "expiresAt" | "staleUntil"
>

/**
 * When an entry is gone for good: its `staleUntil`, or its `expiresAt` when the store keeps no
 * grace (`null`: never).
 *
 * @since 0.1.0
 * @category models
 */
export const goneAt = (record: Pick<EntryRecord, "expiresAt" | "staleUntil">): number | null =>
  record.staleUntil === undefined ? record.expiresAt : record.staleUntil

/**
 * What a removal returns so the caller can delete blobs and log what went.
 *
 * @since 0.1.0
 * @category models
 */
export interface RemovedRef {
  readonly key: string
  readonly blobId: string | null
  readonly storedBytes: number
}

/**
 * What `removeCounted` returns: how many entries went and the blobs they referenced.
 *
 * @since 0.1.0
 * @category models
 */
export interface RemovedCount {
  readonly removed: number
  readonly blobIds: ReadonlyArray<string>
}

/**
 * Selects entries for removal or listing. All given conditions must hold.
 *
 * @since 0.1.0
 * @category models
 */
export interface EntryFilter {
  readonly keys?: ReadonlyArray<string> | undefined
  readonly namespace?: string | undefined
  /** entries created strictly before this time */
  readonly createdBefore?: number | undefined
  /**
   * entries gone at this time: their grace (`staleUntil`, else their expiry) ended at or before
   * it. An entry still inside its grace is not matched.
   */
  readonly expiredAt?: number | undefined
  /** entries carrying at least one of these tags (through the tag index) */
  readonly tags?: ReadonlyArray<string> | undefined
  /** removal only: the row must still have this checksum (not overwritten meanwhile) */
  readonly checksum?: string | undefined
  /**
   * removal only: the row must still reference this blob (`null`: be inline). Blob ids are unique
   * per version, so this binds a removal to the exact version examined, not to a re-store of
   * identical bytes.
   */
  readonly blobId?: string | null | undefined
  readonly limit?: number | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export type EntryOrder = "createdAt" | "accessedAt" | "expiresAt" | "storedBytes" | "hits" | "key"

/**
 * @since 0.1.0
 * @category models
 */
export interface ListOptions {
  readonly limit?: number | undefined
  readonly offset?: number | undefined
  readonly namespace?: string | undefined
  /** Default: insertion order. */
  readonly orderBy?: EntryOrder | undefined
  readonly descending?: boolean | undefined
  /** Only entries carrying this tag. */
  readonly tag?: string | undefined
}

/**
 * One entry of an `upsertMany` batch: the record and its custom metadata rows.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpsertItem {
  readonly record: EntryRecord
  readonly rows?: ReadonlyArray<TableRow> | undefined
}

/**
 * What `upsertMany` returns: the blob ids the replaced versions referenced (to delete), and the
 * total stored bytes afterwards.
 *
 * @since 0.1.0
 * @category models
 */
export interface UpsertManyResult {
  readonly replacedBlobIds: ReadonlyArray<string>
  readonly totalBytes: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface Totals {
  readonly entries: number
  readonly totalBytes: number
  readonly hits: number
  readonly misses: number
}

/**
 * What a store counts per namespace.
 *
 * @since 0.1.0
 * @category models
 */
export interface NamespaceTotals {
  readonly entries: number
  readonly totalBytes: number
}

/**
 * A file's stat fingerprint and the content hash read when it was taken (git's index, for path
 * keys). `stat` is opaque to the store: the Hasher writes `size:mtimeNs:ctimeNs:inode:device` and
 * trusts the hash only while the file's stat gives the same string.
 *
 * @since 0.1.0
 * @category models
 */
export interface PathFingerprint {
  /** Absolute path of the file (of the symlink, for a linked file inside a directory). */
  readonly path: string
  readonly stat: string
  /** XXH64 of the content as 16 hex digits. */
  readonly hash: string
}

/**
 * How a column of a custom metadata table is stored. Values reach the store already encoded by
 * the table's Schema: `text` strings, `real` numbers, `boolean` booleans, `json` JSON text.
 *
 * @since 0.1.0
 * @category models
 */
export type ColumnType = "text" | "real" | "boolean" | "json"

/**
 * @since 0.1.0
 * @category models
 */
export interface TableColumn {
  readonly name: string
  readonly type: ColumnType
  readonly nullable: boolean
}

/**
 * A custom metadata table as a store sees it: one row per entry, keyed by the entry's key and
 * deleted with it.
 *
 * @since 0.1.0
 * @category models
 */
export interface TableDefinition {
  readonly name: string
  readonly columns: ReadonlyArray<TableColumn>
  /** Each index is a list of column names. */
  readonly indexes: ReadonlyArray<ReadonlyArray<string>>
  /** Column lists whose values must be unique across the table. */
  readonly unique: ReadonlyArray<ReadonlyArray<string>>
}

/**
 * A row to write with an entry, values encoded (see `ColumnType`).
 *
 * @since 0.1.0
 * @category models
 */
export interface TableRow {
  readonly table: string
  readonly row: Readonly<Record<string, unknown>>
}

/**
 * One condition on a column of a custom table; values are encoded like the stored ones.
 *
 * @since 0.1.0
 * @category models
 */
export interface TableCondition {
  readonly column: string
  readonly op: "=" | "!=" | "<" | "<=" | ">" | ">=" | "in"
  readonly value: unknown
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TableQuery {
  readonly where: ReadonlyArray<TableCondition>
  readonly orderBy?: string | undefined
  readonly descending?: boolean | undefined
  readonly limit?: number | undefined
  /** Only entries live at this time (not expired). */
  readonly liveAt: number
}

/**
 * @since 0.1.0
 * @category models
 */
export interface TableMatch {
  readonly record: EntryRecord
  readonly row: Readonly<Record<string, unknown>>
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace MetadataStore {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** e.g. "sqlite", "memory" */
    readonly backend: string
    /** The entry with its inline value, if any. Does not count as an access. */
    readonly lookup: (key: string) => Effect.Effect<Option.Option<EntryRecord>, MetadataError>
    /** Like `lookup`, only what a read needs: the hot path of every `get`. */
    readonly probe: (key: string) => Effect.Effect<Option.Option<StoredValue>, MetadataError>
    /**
     * Fast path: `probe` synchronously — the value, `null` when absent, `NotSync` when it cannot
     * answer without effects or fails (then `probe` runs and reports why). Never throws.
     */
    readonly unsafeProbe: (key: string) => StoredValue | null | NotSync
    /**
     * Inserts or replaces an entry (hits and createdAt restart). Returns the blob id the replaced
     * version referenced (when it differs from the new one) so the caller can delete it, and the
     * total stored bytes afterwards. `rows` (custom metadata) are written in the same
     * transaction and replace the entry's previous rows; a row that breaks a constraint fails the
     * whole upsert (`InvalidRow`) and nothing changes. `leaseHolder`: the holder of the lease on
     * `record.key` (`acquireLease`) to give up in the same transaction, as `releaseLease` would
     * (a memoised miss then commits once for its result and its lease); `leaseReleased` says it
     * was. A store that leaves it held answers without `leaseReleased`: the caller releases it.
     */
    readonly upsert: (
      record: EntryRecord,
      rows?: ReadonlyArray<TableRow>,
      leaseHolder?: string
    ) => Effect.Effect<
      { readonly replacedBlobId: string | null; readonly totalBytes: number; readonly leaseReleased?: boolean },
      MetadataError
    >
    /**
     * Fast path: `upsert` synchronously — its answer, or the `MetadataError` it would fail with;
     * `NotSync` when the store cannot write without effects (nothing written: `upsert` then runs).
     * Never throws. A wrapper that changes `upsert` must change or drop this too.
     */
    readonly unsafeUpsert: (
      record: EntryRecord,
      rows?: ReadonlyArray<TableRow>,
      leaseHolder?: string
    ) =>
      | { readonly replacedBlobId: string | null; readonly totalBytes: number; readonly leaseReleased?: boolean }
      | MetadataError
      | NotSync
    /** Atomically removes the entries matching the filter and returns what went. */
    readonly remove: (filter: EntryFilter) => Effect.Effect<ReadonlyArray<RemovedRef>, MetadataError>
    /**
     * `remove` for callers that need only how many entries went and the blobs they referenced
     * (most entries are inline and have none). Derived from `remove` by `make`; stores where a ref
     * per removed entry costs more than the removal itself write their own.
     */
    readonly removeCounted: (filter: EntryFilter) => Effect.Effect<RemovedCount, MetadataError>
    /** Entries matching the filter, without inline values. */
    readonly select: (filter: EntryFilter) => Effect.Effect<ReadonlyArray<EntryRecord>, MetadataError>
    /**
     * Entries in insertion order (the order of each key's first put: an overwrite keeps its place),
     * or by `orderBy` with ties in insertion order (reversed with `descending`).
     */
    readonly list: (options: ListOptions) => Effect.Effect<ReadonlyArray<EntryRecord>, MetadataError>
    /**
     * `list` as public entries: must equal `list(options)` mapped through the record-to-entry
     * conversion of `metadata/entries.ts` (parsed params and metadata), which is what `make`
     * derives. Stores that can build entries without a record per row between write their own;
     * listing 10,000 entries is mostly allocation.
     */
    readonly listEntries: (options: ListOptions) => Effect.Effect<ReadonlyArray<CacheEntry>, MetadataError>
    /**
     * Renews the expiry of a live entry, keeping its grace (`staleUntil` moves by as much as
     * `expiresAt`; `null` expiry: `null`); `false` when absent or already expired at `now`. With
     * `resign`, only while the checksum is still `from`, which becomes `to` (a signature covers
     * the expiry, so a signed entry's new expiry comes with its new signature).
     */
    readonly touch: (
      key: string,
      expiresAt: number | null,
      now: number,
      resign?: { readonly from: string; readonly to: string } | undefined
    ) => Effect.Effect<boolean, MetadataError>
    /** Records a hit (key given) or a miss (key null). May be batched; `flush` makes it durable. */
    readonly recordAccess: (key: string | null, now: number) => Effect.Effect<void>
    /**
     * Fast path: `recordAccess` synchronously, for stores that batch in memory; `NotSync` when it
     * recorded nothing (then `recordAccess` runs). Never throws.
     */
    readonly unsafeRecordAccess: (key: string | null, now: number) => void | NotSync
    /**
     * `lookup` of many keys, in their order (`None` for an absent key). One query on the SQL
     * stores; the `make` default looks each key up.
     */
    readonly lookupMany: (
      keys: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<Option.Option<EntryRecord>>, MetadataError>
    /** `probe` of many keys, in their order. The `make` default narrows `lookupMany`. */
    readonly probeMany: (
      keys: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<Option.Option<StoredValue>>, MetadataError>
    /**
     * `upsert` of many entries as one transaction: all are written or, when one fails (a row
     * breaking a constraint: `InvalidRow`), none. A key given twice keeps its last record (the
     * blob of the earlier one is among `replacedBlobIds`). The `make` default upserts one at a time
     * and undoes nothing; every store of this package writes its own.
     */
    readonly upsertMany: (items: ReadonlyArray<UpsertItem>) => Effect.Effect<UpsertManyResult, MetadataError>
    /**
     * Fast path: `upsertMany` of `count` entries synchronously, entry `i` made by `produce(i)` inside
     * the transaction just before its row is written, so a caller need not hold every entry of a
     * large batch at once. `produce` answering `NotSync` rolls the whole batch back and the answer
     * is `NotSync`, with nothing written, as from a store that cannot write synchronously (the
     * `make` default, which calls no `produce`). Otherwise what `upsertMany` would answer, or the
     * `MetadataError` it would fail with. Never throws; `produce` must not either. A wrapper that
     * changes `upsertMany` must change or drop this too.
     */
    readonly unsafeUpsertMany: (
      count: number,
      produce: (index: number) => UpsertItem | NotSync
    ) => UpsertManyResult | MetadataError | NotSync
    /** Removes least-recently-used entries until at least `bytes` are freed. */
    readonly evict: (bytes: number) => Effect.Effect<ReadonlyArray<RemovedRef>, MetadataError>
    readonly totals: Effect.Effect<Totals, MetadataError>
    /**
     * The entries and stored bytes of one namespace, from counters the store keeps per namespace
     * (an index, never a scan of the entries). The `make` default counts a `list` of the namespace:
     * correct, but a scan, for stores that keep no such counters.
     */
    readonly namespaceTotals: (namespace: string) => Effect.Effect<NamespaceTotals, MetadataError>
    /**
     * For `verify({ repair })`: sets the recorded size of the entry `key` when its row is still
     * the version examined (same blob id and checksum); `true` when a row was updated. A store
     * that cannot fails with reason "Unsupported" (the `make` default), and the cache removes the
     * entry instead.
     */
    readonly repairSize: (
      key: string,
      blobId: string | null,
      checksum: string,
      storedBytes: number
    ) => Effect.Effect<boolean, MetadataError>
    /**
     * For stores that keep entry/byte counters: recomputes them from the rows (hits and misses are
     * kept) and returns the totals afterwards. Stores without counters compute `totals` from the
     * rows already, so the `make` default is `totals`.
     */
    readonly recount: Effect.Effect<Totals, MetadataError>
    /** Removes every entry; counters are kept. */
    readonly clear: Effect.Effect<ReadonlyArray<RemovedRef>, MetadataError>
    /** Writes batched access records. */
    readonly flush: Effect.Effect<void, MetadataError>
    /** Entries (without inline values) with their row in a custom table, filtered on its columns. */
    readonly queryTable: (
      table: string,
      query: TableQuery
    ) => Effect.Effect<ReadonlyArray<TableMatch>, MetadataError>
    /** The SQL client of a SQL backend, for raw queries; `null` for memory and JSON (the `make` default). */
    readonly sql: SqlClient.SqlClient | null
    /** The stored fingerprints of these paths; paths without one are left out. */
    readonly lookupFingerprints: (
      paths: ReadonlyArray<string>
    ) => Effect.Effect<ReadonlyArray<PathFingerprint>, MetadataError>
    /** Inserts or replaces fingerprints by path, all at once. */
    readonly saveFingerprints: (fingerprints: ReadonlyArray<PathFingerprint>) => Effect.Effect<void, MetadataError>
    /**
     * Up to `limit` fingerprinted paths after `after` (`null`: from the first), in the store's own
     * path order: a cursor for walking every fingerprint a page at a time.
     */
    readonly fingerprintPaths: (
      after: string | null,
      limit: number
    ) => Effect.Effect<ReadonlyArray<string>, MetadataError>
    /** Removes the fingerprints of these paths; returns how many there were. */
    readonly deleteFingerprints: (paths: ReadonlyArray<string>) => Effect.Effect<number, MetadataError>
    /**
     * Takes the lease on `key` for `holder` until `until` (epoch ms), atomically across every
     * process sharing the store: succeeds when nobody holds it, when the current lease has expired
     * (its `until` is at or before `now`), or when `holder` already holds it (a renewal). `true`
     * when `holder` holds the lease afterwards. Leases are independent of entries: `clear` and
     * `remove` leave them alone. Used by `cached` so that one process computes a value at a time.
     */
    readonly acquireLease: (
      key: string,
      holder: string,
      until: number,
      now: number
    ) => Effect.Effect<boolean, MetadataError>
    /**
     * `acquireLease`, refused (`false`, nothing written) while an entry live at `liveAt` (no
     * expiry, or one after it) is stored under `key`: one atomic step, so a memoised miss that
     * takes the lease needs no second read to learn that another process stored the value
     * meanwhile. `null` when the store has no such step (the `make` default): `cached` then takes
     * the lease and reads again.
     */
    readonly acquireLeaseIfAbsent:
      | ((
        key: string,
        holder: string,
        until: number,
        now: number,
        liveAt: number
      ) => Effect.Effect<boolean, MetadataError>)
      | null
    /** Gives up the lease on `key` when `holder` still holds it; otherwise does nothing. */
    readonly releaseLease: (key: string, holder: string) => Effect.Effect<void, MetadataError>
    /**
     * A number that changes whenever any entry may have changed — written by this store or by
     * another process — and stays equal otherwise. Synchronous and cheap: `cached` reads it on
     * every memoised hit to decide whether a value it holds in memory is still the stored one.
     * Stores that cannot tell answer `NotSync` (the `make` default), and memoised calls then always
     * read the store.
     */
    readonly changeCount: () => number | NotSync
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class MetadataStore extends Context.Tag("cacheness/MetadataStore")<MetadataStore, MetadataStore.Service>() {}
