/**
 * Every use the engine makes of the services' fast paths and derived members, in one place:
 * synchronous answers (`unsafeKey`, `unsafeProbe`, `unsafeDecode`, `unsafeRecordAccess`, each
 * `NotSync` when it cannot answer), cheaper forms of derived operations (`removeCounted`,
 * `listEntries`, `changeCount`, `repairSize`, `recount`, `retainsBytes`) and what only some blob
 * stores know (the ages of blobs and temp files). Each service's `make(impl)` fills in what an
 * implementation leaves out, so nothing here branches on a missing member.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { BlobStore } from "../blob/service.js"
import type { Codec, Encoded } from "../codec/service.js"
import type { MetadataError, StorageError } from "../errors.js"
import type { Hasher } from "../key/service.js"
import type { EntryFilter, ListOptions, MetadataStore, StoredValue } from "../metadata/service.js"
import type { CacheEntry } from "../schema/CacheEntry.js"
import type { CacheKey, KeyParams, ParamsDescription } from "../schema/CacheKey.js"
import { NotSync } from "../shared/sync.js"

/**
 * The key of named parameters synchronously, or `NotSync` (paths to hash, bad input).
 *
 * @since 0.1.0
 * @category fast path
 */
export const keySync = (hasher: Hasher.Service, params: KeyParams): CacheKey | NotSync => hasher.unsafeKey(params)

/**
 * The stored description of named parameters synchronously (`storeKeyParams`), or `NotSync`.
 *
 * @since 0.1.0
 * @category fast path
 */
export const describeSync = (hasher: Hasher.Service, params: KeyParams): ParamsDescription | NotSync =>
  hasher.unsafeDescribe(params)

/**
 * The stored entry synchronously (`null` when absent), or `NotSync`.
 *
 * @since 0.1.0
 * @category fast path
 */
export const probeSync = (metadata: MetadataStore.Service, key: string): StoredValue | null | NotSync =>
  metadata.unsafeProbe(key)

/**
 * The decoded value synchronously, or `NotSync` (a blob-sized value, a handler without a plain
 * decoder, an error the effectful decode reports in full).
 *
 * @since 0.1.0
 * @category fast path
 */
export const decodeSync = (codec: Codec.Service, bytes: Uint8Array): unknown => codec.unsafeDecode(bytes)

/**
 * The encoded value synchronously (no schema), or `NotSync` (a handler without a plain encoder,
 * an error the effectful encode reports in full).
 *
 * @since 0.1.0
 * @category fast path
 */
export const encodeSync = (codec: Codec.Service, value: unknown): Encoded | NotSync => codec.unsafeEncode(value)

/**
 * Records an access (a hit on `key`, a miss with `null`) synchronously, or `NotSync` when the
 * store cannot (the caller then runs `recordAccess`).
 *
 * @since 0.1.0
 * @category fast path
 */
export const recordAccessSync = (metadata: MetadataStore.Service, key: string | null, now: number): void | NotSync =>
  metadata.unsafeRecordAccess(key, now)

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
  metadata.removeCounted(filter)

/**
 * The entries of a listing, built by the store when it can (without materialising rows).
 *
 * @since 0.1.0
 * @category derived
 */
export const listEntries = (
  metadata: MetadataStore.Service,
  options: ListOptions
): Effect.Effect<ReadonlyArray<CacheEntry>, MetadataError> => metadata.listEntries(options)

/**
 * A reader of the store's change counter; it answers `undefined` when the store cannot tell (or
 * fails to): values held in memory must then not be trusted.
 *
 * @since 0.1.0
 * @category derived
 */
export const changeCount = (metadata: MetadataStore.Service): () => number | undefined => () => {
  try {
    const count = metadata.changeCount()
    return count === NotSync ? undefined : count
  } catch {
    return undefined
  }
}

/**
 * How far the store's change count can be trusted (see `memoryTier.ts`): `exact` when it has
 * moved by the time any write is acknowledged, `pushed` when it moves once a notification
 * arrives (PostgreSQL's LISTEN/NOTIFY feed), a moment after the commit.
 *
 * @since 0.1.0
 * @category derived
 */
export const changeCountKind = (metadata: MetadataStore.Service): "exact" | "pushed" =>
  metadata.backend === "postgres" ? "pushed" : "exact"

/**
 * Fixes a recorded size in place; `NotSync` when the store cannot ("Unsupported": the entry is
 * then removed instead).
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
): Effect.Effect<boolean | NotSync, MetadataError> =>
  Effect.catchIf(
    metadata.repairSize(key, blobId, checksum, actualBytes),
    (error) => error.reason === "Unsupported",
    () => Effect.succeed(NotSync)
  )

/**
 * Recomputes the store's counters from its rows, when it keeps counters.
 *
 * @since 0.1.0
 * @category derived
 */
export const recount = (metadata: MetadataStore.Service): Effect.Effect<void, MetadataError> =>
  Effect.asVoid(metadata.recount)

/**
 * Whether the decoded value may still reference `bytes` (so the buffer must not be reused).
 *
 * @since 0.1.0
 * @category derived
 */
export const retainsBytes = (codec: Codec.Service, bytes: Uint8Array): boolean => codec.retainsBytes(bytes) !== false

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
): Effect.Effect<ReadonlyArray<string>, StorageError> => blobs.listAged(olderThan)

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
): Effect.Effect<ReadonlyArray<string>, StorageError> => blobs.staleTemp(olderThan)

/**
 * Removes those leftovers; how many went.
 *
 * @since 0.1.0
 * @category blobs
 */
export const removeStaleTemp = (blobs: BlobStore.Service, olderThan: number): Effect.Effect<number, StorageError> =>
  blobs.removeStaleTemp(olderThan)
