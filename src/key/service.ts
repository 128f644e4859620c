/**
 * Canonical, stable cache keys from named parameters, and content hashes of bytes.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Effect from "effect/Effect"
import type { MetadataError, PathFingerprint } from "../metadata/service.js"
import type { CacheKey, KeyParams, ParamsDescription } from "../schema/CacheKey.js"
import { defined } from "../shared/defined.js"
import { NotSync } from "../shared/sync.js"

import { KeyError } from "../errors.js"

export { KeyError }

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace Hasher {
  /**
   * A hash in progress (`hashStream`).
   *
   * @since 0.1.0
   * @category models
   */
  export interface Stream {
    readonly update: (piece: Uint8Array) => void
    readonly digest: () => string
  }

  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    /** The key of named parameters: XXH64 of their canonical encoding, as 16 hex digits. */
    readonly key: (params: KeyParams) => Effect.Effect<CacheKey, KeyError>
    /**
     * Fast path: `key` synchronously, or `NotSync` when the parameters name paths to hash or are
     * not valid (then `key` runs and reports why). Never throws.
     */
    readonly unsafeKey: (params: KeyParams) => CacheKey | NotSync
    /** A JSON-safe description of the parameters, stored beside the entry. */
    readonly describe: (params: KeyParams) => Effect.Effect<ParamsDescription, KeyError>
    /**
     * Fast path: `describe` synchronously, or `NotSync` when it cannot (then `describe` runs and
     * reports why). Never throws.
     */
    readonly unsafeDescribe: (params: KeyParams) => ParamsDescription | NotSync
    /** XXH64 of bytes as 16 hex digits (checksums). Synchronous: the hasher is ready once built. */
    readonly hashBytes: (bytes: Uint8Array) => string
    /**
     * `hashBytes` fed in consecutive pieces: `digest` after every piece was given is `hashBytes`
     * of them joined. Optional; the cache uses it to hash a large blob while it is still being
     * read, and hashes the whole when a hasher has none.
     */
    readonly hashStream?: (() => Hasher.Stream) | undefined
    /**
     * The content hash of a file (XXH64 of its bytes) or directory (XXH64 of its sorted listing),
     * as `Key.file` / `Key.dir` key it. A missing or unreadable path is a `KeyError`.
     */
    readonly hashPath: (path: string | URL) => Effect.Effect<string, KeyError>
  }
}

/**
 * Progress of hashing one path given as a key parameter (a directory tree or a large file).
 * Reported after each file; `filesDone`/`bytesDone` include files answered by fingerprints.
 *
 * @since 0.1.0
 * @category models
 */
export interface PathHashProgress {
  /** The file or directory given in the key. */
  readonly path: string
  readonly filesDone: number
  readonly filesTotal: number
  readonly bytesDone: number
  readonly bytesTotal: number
  /** Files whose hash came from the stat fingerprint cache (not read). */
  readonly filesFromFingerprints: number
}

/**
 * Where the Hasher keeps stat fingerprints (path, size, mtime, ctime, inode → content hash), so an
 * unchanged file is not read again. Optional: the Hasher uses it when its layer finds it in
 * context; the cache layers provide it from the `MetadataStore`.
 *
 * @since 0.1.0
 * @category tags
 */
export class PathFingerprints extends Context.Tag("cacheness/PathFingerprints")<PathFingerprints, {
  /** The stored fingerprints of these paths (absent paths are left out). */
  readonly lookup: (paths: ReadonlyArray<string>) => Effect.Effect<ReadonlyArray<PathFingerprint>, MetadataError>
  /** Inserts or replaces fingerprints by path. */
  readonly save: (fingerprints: ReadonlyArray<PathFingerprint>) => Effect.Effect<void, MetadataError>
}>() {}

/**
 * @since 0.1.0
 * @category tags
 */
export class Hasher extends Context.Tag("cacheness/Hasher")<Hasher, Hasher.Service>() {}

/**
 * What an implementer writes: `key`, `describe`, `hashBytes` and `hashPath`; `unsafeKey` may be
 * given when keys can be computed without effects.
 *
 * @since 0.1.0
 * @category models
 */
export type Impl =
  & Omit<Hasher.Service, "unsafeKey" | "unsafeDescribe">
  & Partial<Pick<Hasher.Service, "unsafeKey" | "unsafeDescribe">>

/**
 * A `Hasher.Service` from its primitive operations (as `KeyValueStore.make` does): without an
 * `unsafeKey`, every key is computed by the effectful `key` (`unsafeKey` answers `NotSync`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Impl): Hasher.Service =>
  Hasher.of({ unsafeKey: () => NotSync, unsafeDescribe: () => NotSync, ...defined(impl) })
