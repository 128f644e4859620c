/**
 * Every use the engine makes of the services' optional members, in one place: synchronous fast
 * paths (`unsafeKey`, `unsafeProbe`, `unsafeDecode`, `unsafeRecordAccess`), cheaper forms of
 * derived operations (`removeCounted`, `listEntries`, `changeCount`, `repairSize`, `recount`,
 * `retainsBytes`) and what only some blob stores know (the ages of blobs and temp files). Each
 * adapter answers with `NotSync`, or falls back to the primitive operations, when the service
 * lacks the member, so the rest of the engine has no `=== undefined` branch.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { BlobStore } from "../blob/service.js"
import type { Codec } from "../codec/service.js"
import type { MetadataError, StorageError } from "../errors.js"
import type { Hasher } from "../key/service.js"
import { toEntry } from "../metadata/entries.js"
import type { EntryFilter, ListOptions, MetadataStore, StoredValue } from "../metadata/service.js"
import type { CacheEntry } from "../schema/CacheEntry.js"
import type { CacheKey, KeyParams } from "../schema/CacheKey.js"
import { NotSync } from "../shared/sync.js"

/**
 * Whether the four synchronous members a hit needs all exist (key, probe, decode, access).
 *
 * @since 0.1.0
 * @category fast path
 */
export const hasFastPath = (hasher: Hasher.Service, metadata: MetadataStore.Service, codec: Codec.Service): boolean =>
  hasher.unsafeKey !== undefined && metadata.unsafeProbe !== undefined && metadata.unsafeRecordAccess !== undefined &&
  codec.unsafeDecode !== undefined

/**
 * The key of named parameters synchronously, or `NotSync` (paths to hash, bad input).
 *
 * @since 0.1.0
 * @category fast path
 */
export const keySync = (hasher: Hasher.Service, params: KeyParams): CacheKey | NotSync => {
  const key = hasher.unsafeKey?.(params)
  return key === undefined ? NotSync : key
}

/**
 * The stored entry synchronously (`null` when absent), or `NotSync`.
 *
 * @since 0.1.0
 * @category fast path
 */
export const probeSync = (metadata: MetadataStore.Service, key: string): StoredValue | null | NotSync => {
  const found = metadata.unsafeProbe?.(key)
  return found === undefined ? NotSync : found
}

/**
 * The decoded value synchronously, or `NotSync` (a blob-sized value, a handler without a plain
 * decoder, an error the effectful decode reports in full).
 *
 * @since 0.1.0
 * @category fast path
 */
export const decodeSync = (codec: Codec.Service, bytes: Uint8Array): { readonly value: unknown } | NotSync => {
  const decoded = codec.unsafeDecode?.(bytes)
  return decoded === undefined ? NotSync : decoded
}

/**
 * Records an access (a hit on `key`, a miss with `null`) synchronously; the store must have
 * `unsafeRecordAccess` (see `hasFastPath`).
 *
 * @since 0.1.0
 * @category fast path
 */
export const recordAccessSync = (metadata: MetadataStore.Service, key: string | null, now: number): void =>
  metadata.unsafeRecordAccess!(key, now)

/**
 * Removes the matching entries: the blob ids to delete and how many entries went.
 *
 * @since 0.1.0
 * @category derived
 */
export const removeCounted = (
  metadata: MetadataStore.Service,
  filter: EntryFilter
): Effect.Effect<{ readonly blobIds: ReadonlyArray<string>; readonly removed: number }, MetadataError> =>
  metadata.removeCounted !== undefined
    ? metadata.removeCounted(filter)
    : Effect.map(metadata.remove(filter), (refs) => ({
      // Most removed entries are inline: only the ones with a blob cost an effect each.
      blobIds: refs.flatMap((ref) => ref.blobId === null ? [] : [ref.blobId]),
      removed: refs.length
    }))

/**
 * The entries of a listing, built by the store when it can (without materialising rows).
 *
 * @since 0.1.0
 * @category derived
 */
export const listEntries = (
  metadata: MetadataStore.Service,
  options: ListOptions
): Effect.Effect<ReadonlyArray<CacheEntry>, MetadataError> =>
  metadata.listEntries !== undefined
    ? metadata.listEntries(options)
    : Effect.map(metadata.list(options), (rows) => rows.map(toEntry))

/**
 * A reader of the store's change counter; it answers `undefined` when the store cannot tell (or
 * fails to): values held in memory must then not be trusted.
 *
 * @since 0.1.0
 * @category derived
 */
export const changeCount = (metadata: MetadataStore.Service): () => number | undefined =>
  metadata.changeCount === undefined
    ? () => undefined
    : () => {
      try {
        return metadata.changeCount!()
      } catch {
        return undefined
      }
    }

/**
 * Fixes a recorded size in place; `NotSync` when the store cannot (the entry is then removed).
 *
 * @since 0.1.0
 * @category derived
 */
export const repairSize = (
  metadata: MetadataStore.Service,
  key: string,
  blobId: string | null,
  checksum: string,
  actualBytes: number
): Effect.Effect<boolean, MetadataError> | NotSync =>
  metadata.repairSize === undefined ? NotSync : metadata.repairSize(key, blobId, checksum, actualBytes)

/**
 * Recomputes the store's counters from its rows, when it keeps counters.
 *
 * @since 0.1.0
 * @category derived
 */
export const recount = (metadata: MetadataStore.Service): Effect.Effect<void, MetadataError> =>
  metadata.recount === undefined ? Effect.void : Effect.asVoid(metadata.recount)

/**
 * Whether the decoded value may still reference `bytes` (so the buffer must not be reused).
 *
 * @since 0.1.0
 * @category derived
 */
export const retainsBytes = (codec: Codec.Service, bytes: Uint8Array): boolean => codec.retainsBytes?.(bytes) !== false

/**
 * Whether the store's path fingerprints describe this machine's files. A store shared by several
 * machines (PostgreSQL) holds paths that exist on another machine only: they are never pruned.
 *
 * @since 0.1.0
 * @category derived
 */
export const fingerprintsAreLocal = (metadata: MetadataStore.Service): boolean => metadata.backend !== "postgres"

/**
 * Blob ids last written more than `olderThan` ms ago. A store that knows no ages lists every
 * blob; the caller's second look at the rows is then its only guard.
 *
 * @since 0.1.0
 * @category blobs
 */
export const listAged = (
  blobs: BlobStore.Service,
  olderThan: number
): Effect.Effect<ReadonlyArray<string>, StorageError> =>
  blobs.listAged !== undefined ? blobs.listAged(olderThan) : blobs.list

/**
 * Leftovers of writes abandoned more than `olderThan` ms ago (temp files); none for a store
 * whose writes leave none.
 *
 * @since 0.1.0
 * @category blobs
 */
export const staleTemp = (
  blobs: BlobStore.Service,
  olderThan: number
): Effect.Effect<ReadonlyArray<string>, StorageError> =>
  blobs.staleTemp !== undefined ? blobs.staleTemp(olderThan) : Effect.succeed([])

/**
 * Removes those leftovers; how many went.
 *
 * @since 0.1.0
 * @category blobs
 */
export const removeStaleTemp = (blobs: BlobStore.Service, olderThan: number): Effect.Effect<number, StorageError> =>
  blobs.removeStaleTemp !== undefined ? blobs.removeStaleTemp(olderThan) : Effect.succeed(0)
