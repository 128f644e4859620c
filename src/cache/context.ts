/**
 * What every part of the engine shares: the four services, the policies, the signer, the clock
 * of latency metrics, keys of inputs, and removal of entries with their blobs.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import { BlobStore } from "../blob/service.js"
import { Codec } from "../codec/service.js"
import { Hasher, KeyError } from "../key/service.js"
import {
  type EntryFilter,
  type MetadataError,
  MetadataStore,
  type RemovedRef,
  type StoredValue
} from "../metadata/service.js"
import { type CacheKey, isCacheKey, type KeyInput } from "../schema/CacheKey.js"
import type { MetadataTable } from "../schema/MetadataTable.js"
import * as NamespaceKey from "../shared/namespaceKey.js"
import * as Validate from "../shared/validate.js"
import * as FastPath from "./fastPath.js"
import type { ResolvedConfig } from "./service.js"
import * as Signing from "./signing.js"

/**
 * The engine's shared state and helpers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Engine {
  readonly config: ResolvedConfig
  readonly hasher: Hasher.Service
  readonly codec: Codec.Service
  readonly blobs: BlobStore.Service
  readonly metadata: MetadataStore.Service
  /** The HMAC signer, or `null` (checksums only). */
  readonly signer: Signing.Signer | null
  /** The Clock the layer was built with, read synchronously for latency metrics. */
  readonly clock: Clock.Clock
  readonly sinceMs: (started: bigint) => number
  readonly tables: ReadonlyMap<string, MetadataTable>
  /**
   * The key of an input in a namespace (default `""`: the key of the params as is). A `CacheKey`
   * is an entry's full identity: given with another namespace it is a `KeyError`.
   */
  readonly toKey: (input: KeyInput, namespace?: string | undefined) => Effect.Effect<CacheKey, KeyError>
  /** The namespace rule of `shared/namespaceKey.ts`, ready (synchronous). */
  readonly namespaceKey: NamespaceKey.Derive
  readonly deleteBlobIds: (ids: ReadonlyArray<string>) => Effect.Effect<void>
  readonly deleteBlobs: (refs: ReadonlyArray<RemovedRef>) => Effect.Effect<void>
  /** Removes the matching entries and their blobs; how many entries went. */
  readonly removeMatching: (filter: EntryFilter) => Effect.Effect<number, MetadataError>
  /** Removes an entry found broken on read, unless it was overwritten meanwhile. */
  readonly dropBroken: (record: StoredValue, why: string) => Effect.Effect<void, MetadataError>
}

/**
 * A removal filter bound to the version examined: the checksum, the blob id (unique per
 * version) and the creation time (restarted by every put), so a re-store of identical bytes
 * meanwhile is never removed in its place.
 *
 * @since 0.1.0
 * @category removal
 */
export const versionOf = (record: StoredValue & { readonly createdAt?: number }): EntryFilter => ({
  keys: [record.key],
  checksum: record.checksum,
  blobId: record.blobId,
  createdBefore: record.createdAt === undefined ? undefined : record.createdAt + 1
})

/**
 * Calls a progress callback the caller owns: its throw is logged and the work goes on, so a
 * removal half done always finishes (rows and their blobs).
 *
 * @since 0.1.0
 * @category progress
 */
export const notify = <P>(callback: ((progress: P) => void) | undefined, progress: P) =>
  callback === undefined ? Effect.void : Effect.try(() => callback(progress)).pipe(
    Effect.catchAll((e) =>
      Effect.logWarning(`cacheness: an onProgress callback threw; ignored: ${Validate.show(e.error)}`)
    )
  )

/**
 * Reads the four services from context and builds the shared helpers.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  config: ResolvedConfig
): Effect.Effect<Engine, never, Hasher | Codec | MetadataStore | BlobStore> =>
  Effect.gen(function*() {
    const hasher = yield* Hasher
    const codec = yield* Codec
    const blobs = yield* BlobStore
    const metadata = yield* MetadataStore
    const signer = config.signing === null ? null : Signing.make(Redacted.value(config.signing.key))
    // Latency is read from the Clock the layer was built with, synchronously: an effectful
    // Clock read per get would cost more than all of the metrics bookkeeping (~0.3 µs).
    const clock = yield* Effect.clock
    const sinceMs = (started: bigint) => Number(clock.unsafeCurrentTimeNanos() - started) / 1e6

    const namespaceKey = yield* NamespaceKey.load

    const toKey = (input: KeyInput, namespace?: string | undefined): Effect.Effect<CacheKey, KeyError> => {
      const namespaced = namespace !== undefined && namespace !== NamespaceKey.DEFAULT_NAMESPACE
      if (typeof input === "string") {
        if (namespaced && isCacheKey(input)) {
          return Effect.fail(
            new KeyError({
              reason: "InvalidKey",
              method: "Cache",
              path: "key",
              description:
                `"${input}" is a CacheKey, an entry's full identity (the key put returns includes its namespace); pass it without a namespace, or pass named parameters with namespace "${namespace}"`
            })
          )
        }
        return isCacheKey(input)
          ? Effect.succeed(input)
          : Effect.fail(
            new KeyError({
              reason: "InvalidKey",
              method: "Cache",
              path: "key",
              description:
                `"${input}" is not a cache key (16 lowercase hex digits); pass named parameters or the result of cache.key(params)`
            })
          )
      }
      return namespaced
        ? Effect.map(hasher.key(input), (key) => namespaceKey(namespace, key) as CacheKey)
        : hasher.key(input)
    }

    const deleteBlobIds = (ids: ReadonlyArray<string>) =>
      Effect.forEach(ids, (id) =>
        blobs.delete(id).pipe(
          Effect.catchAll((e) => Effect.logWarning(`cacheness: could not delete blob ${id}: ${e.message}`))
        ), { discard: true, concurrency: 8 })

    // Most removed entries are inline: only the ones with a blob cost an effect each.
    const deleteBlobs = (refs: ReadonlyArray<RemovedRef>) =>
      deleteBlobIds(refs.flatMap((ref) => ref.blobId === null ? [] : [ref.blobId]))

    const removeOnce = (filter: EntryFilter): Effect.Effect<number, MetadataError> =>
      Effect.flatMap(FastPath.removeCounted(metadata, filter), ({ blobIds, removed }) =>
        Effect.as(deleteBlobIds(blobIds), removed))
    /**
     * Removing is how a full cache frees space, yet the metadata store needs a little to record a
     * removal. On a full disk the blobs of the matching rows go first (a reader finding one gone
     * misses, as it would after the removal), then the removal is tried once more.
     */
    const removeMatching = (filter: EntryFilter): Effect.Effect<number, MetadataError> =>
      removeOnce(filter).pipe(
        Effect.catchIf((error) =>
          error.reason === "NoSpace", (error) =>
          Effect.flatMap(metadata.select(filter), (records) => {
            const ids = records.flatMap((r) =>
              r.blobId === null ? [] : [r.blobId]
            )
            return ids.length === 0 ? Effect.fail(error) : Effect.zipRight(deleteBlobIds(ids), removeOnce(filter))
          }))
      )

    const dropBroken = (record: StoredValue, why: string) =>
      Effect.gen(function*() {
        if (config.readOnly === true) {
          return yield* Effect.logWarning(
            `cacheness: entry ${record.key} ${why}; treated as a miss (not removed: the cache is open read-only)`
          )
        }
        yield* Effect.logWarning(`cacheness: entry ${record.key} ${why}; removed, treated as a miss`)
        yield* removeMatching(versionOf(record))
      })

    return {
      config,
      hasher,
      codec,
      blobs,
      metadata,
      signer,
      clock,
      sinceMs,
      tables: new Map(config.metadataTables.map((t) => [t.name, t])),
      toKey,
      namespaceKey,
      deleteBlobIds,
      deleteBlobs,
      removeMatching,
      dropBroken
    }
  })
