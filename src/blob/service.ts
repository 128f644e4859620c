/**
 * Bytes by id: written atomically, read, deleted, listed.
 *
 * Two rules about bytes hold for every store, because the cache relies on them:
 * - A store must not keep the bytes it is given. `put` must copy (or finish writing) them before
 *   its effect completes: the cache hands large encoded values back to its buffer pool
 *   (`shared/bufferPool.ts`) as soon as `put` returns, and the next large put overwrites them.
 * - The `Uint8Array` `get` returns belongs to the caller, who may mutate it or give it to the
 *   buffer pool once the decoded value no longer references it. It may itself be a pooled buffer
 *   (the file-system store reads large blobs into one); it must never be memory the store still
 *   uses (the memory store returns a copy).
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"

import { StorageError } from "../errors.js"
import { defined } from "../shared/defined.js"

export { StorageError }

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace BlobStore {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** e.g. "filesystem", "memory" */
    readonly backend: string
    /** Where the blobs live, when that is a directory. */
    readonly location: string | null
    /**
     * Writes the bytes under `id` atomically: a reader sees no blob or the whole blob. The store
     * must not keep `bytes` once the effect completes (the caller reuses them).
     */
    readonly put: (id: string, bytes: Uint8Array) => Effect.Effect<void, StorageError>
    /**
     * Optional: `put` of bytes not all written yet. The store calls `fill` once, synchronously;
     * it writes the rest of `bytes` and calls back `onFilled(start, end)` as each range becomes
     * final, first to last and contiguous (everything before the first `start` is final already),
     * so the store can write each range while the next is filled. When `fill` returns, `bytes` are
     * complete. A store without it is given complete bytes through `put`; a wrapper that changes
     * `put` must change or drop this too (a spread of the inner store keeps it).
     */
    readonly putFilling?: (
      id: string,
      bytes: Uint8Array,
      fill: (onFilled: (start: number, end: number) => void) => void
    ) => Effect.Effect<void, StorageError>
    /**
     * The bytes, owned by the caller from then on (possibly a pooled buffer, never shared). A store
     * that reads a blob in pieces may hand each to `onPiece` as it lands, first to last, while it
     * reads the next (the cache hashes a large blob so, instead of after the read); pieces are
     * views of the bytes it returns, not to be kept. A store may never call it: the caller checks
     * that the pieces covered the bytes before it trusts anything computed on them.
     */
    readonly get: (
      id: string,
      onPiece?: ((piece: Uint8Array) => void) | undefined
    ) => Effect.Effect<Option.Option<Uint8Array>, StorageError>
    /**
     * Optional: `get` of a blob whose bytes go to places the caller chooses once it has seen the
     * first ones (a large array stored raw is read straight into the array it decodes to). The
     * store reads the first `HEAD_BYTES` (fewer when the blob is shorter) and calls `place(head,
     * size)` once, synchronously, with the blob's size: it answers views whose lengths add up to
     * `size`, in the blob's order, or `undefined` to take the bytes as `get` would; with `ready`,
     * the store writes nothing into the views before it settles (their memory is still being
     * prepared). The store then fills the views in order (`head`'s bytes are copied into the first
     * ones) and answers them; a
     * blob found shorter than `size` while read answers its bytes so far (the last view cut short,
     * later ones left out), so the caller sees the length it has. When `place` declines, the answer
     * is one view: the bytes `get` returns. `onPiece` as for `get`, with pieces of the views, in
     * order. A wrapper that changes `get` must change or drop this too (a spread keeps it).
     */
    readonly getPlaced?: (
      id: string,
      place: (head: Uint8Array, size: number) => Places | undefined,
      onPiece?: ((piece: Uint8Array) => void) | undefined
    ) => Effect.Effect<Option.Option<ReadonlyArray<Uint8Array>>, StorageError>
    /** `true` when a blob was removed. */
    readonly delete: (id: string) => Effect.Effect<boolean, StorageError>
    /**
     * Removes every blob of `ids` that exists (a missing one is no error); how a removal or an
     * eviction of many entries deletes their blobs. Default one `delete` per id; an object store
     * sends batches (S3's DeleteObjects).
     */
    readonly deleteMany: (ids: ReadonlyArray<string>) => Effect.Effect<void, StorageError>
    readonly has: (id: string) => Effect.Effect<boolean, StorageError>
    /** Every stored blob id (temp files of writes in flight are not blobs). */
    readonly list: Effect.Effect<ReadonlyArray<string>, StorageError>
    /** Removes every blob and leftover temp file; returns the number of blobs removed. */
    readonly clear: Effect.Effect<number, StorageError>
    /**
     * The ids of blobs last written more than `olderThan` ms ago, by the clock that stamps the
     * store's own times. A store that knows no ages lists every blob (the `make` default): the
     * caller's second look at the rows is then its only guard against a put in flight.
     */
    readonly listAged: (olderThan: number) => Effect.Effect<ReadonlyArray<string>, StorageError>
    /** Leftovers (temp files) of writes abandoned more than `olderThan` ms ago; default none. */
    readonly staleTemp: (olderThan: number) => Effect.Effect<ReadonlyArray<string>, StorageError>
    /** Removes those leftovers; returns how many went (default 0). */
    readonly removeStaleTemp: (olderThan: number) => Effect.Effect<number, StorageError>
  }
}

/**
 * Where `BlobStore.getPlaced` reads a blob to: `views` in the blob's order, written only once
 * `ready` (when given) has settled, and whether their memory is `touched`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Places {
  readonly views: ReadonlyArray<Uint8Array>
  readonly ready?: Promise<unknown> | undefined
  /**
   * The views' memory is faulted in already (once `ready` settles): a store may read it one piece at a
   * time, where fresh memory gains from several reads side by side.
   */
  readonly touched?: boolean | undefined
}

/**
 * Bytes `getPlaced` reads before it asks where the rest goes: enough for any header a codec
 * plans from.
 *
 * @since 0.1.0
 * @category constants
 */
export const HEAD_BYTES = 4096

/**
 * @since 0.1.0
 * @category tags
 */
export class BlobStore extends Context.Tag("cacheness/BlobStore")<BlobStore, BlobStore.Service>() {}

/**
 * What an implementer writes: `put`, `get`, `delete`, `list` and a `backend` name; `has`, `clear`
 * and `location` may be given when the store does them better than the defaults.
 *
 * @since 0.1.0
 * @category models
 */
export type Impl =
  & Omit<BlobStore.Service, "has" | "clear" | "location" | "listAged" | "staleTemp" | "removeStaleTemp" | "deleteMany">
  & Partial<
    Pick<BlobStore.Service, "has" | "clear" | "location" | "listAged" | "staleTemp" | "removeStaleTemp" | "deleteMany">
  >

/**
 * A `BlobStore.Service` from its primitive operations (as `KeyValueStore.make` does): `has` reads
 * the blob, `clear` deletes every listed blob, `location` is `null` unless given.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Impl): BlobStore.Service =>
  BlobStore.of({
    location: null,
    has: (id) => Effect.map(impl.get(id), Option.isSome),
    listAged: () => impl.list,
    staleTemp: () => Effect.succeed([]),
    removeStaleTemp: () => Effect.succeed(0),
    deleteMany: (ids) => Effect.forEach(ids, (id) => impl.delete(id), { concurrency: 8, discard: true }),
    clear: Effect.flatMap(impl.list, (ids) =>
      Effect.map(
        Effect.forEach(ids, (id) => impl.delete(id), { concurrency: 8 }),
        (deleted) => deleted.filter((d) => d).length
      )),
    ...defined(impl)
  })
