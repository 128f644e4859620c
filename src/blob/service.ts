/**
 * Bytes by id: written atomically, read, deleted, listed.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type * as Option from "effect/Option"

import { StorageError } from "../errors.js"

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
    /** Writes the bytes under `id` atomically: a reader sees no blob or the whole blob. */
    readonly put: (id: string, bytes: Uint8Array) => Effect.Effect<void, StorageError>
    readonly get: (id: string) => Effect.Effect<Option.Option<Uint8Array>, StorageError>
    /** `true` when a blob was removed. */
    readonly delete: (id: string) => Effect.Effect<boolean, StorageError>
    readonly has: (id: string) => Effect.Effect<boolean, StorageError>
    /** Every stored blob id (temp files of writes in flight are not blobs). */
    readonly list: Effect.Effect<ReadonlyArray<string>, StorageError>
    /** Removes every blob and leftover temp file; returns the number of blobs removed. */
    readonly clear: Effect.Effect<number, StorageError>
    /**
     * Optional: the ids of blobs last written more than `olderThan` ms ago, by the clock that
     * stamps the store's own times. A store without it is treated as knowing no ages.
     */
    readonly listAged?: ((olderThan: number) => Effect.Effect<ReadonlyArray<string>, StorageError>) | undefined
    /** Optional: leftovers (temp files) of writes abandoned more than `olderThan` ms ago. */
    readonly staleTemp?: ((olderThan: number) => Effect.Effect<ReadonlyArray<string>, StorageError>) | undefined
    /** Optional: removes those leftovers; returns how many went. */
    readonly removeStaleTemp?: ((olderThan: number) => Effect.Effect<number, StorageError>) | undefined
  }
}

/**
 * @since 0.1.0
 * @category tags
 */
export class BlobStore extends Context.Tag("cacheness/BlobStore")<BlobStore, BlobStore.Service>() {}
