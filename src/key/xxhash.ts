/**
 * The default `Hasher`: XXH64 (seed 0) from xxhash-wasm over the canonical key encoding.
 *
 * Paths in key params (`Key.file`, `Key.dir`, `file:` URLs) are hashed by content: the synchronous
 * encoder collects them on a first pass, `resolvePaths` hashes them (with fingerprints when a
 * `PathFingerprints` service is in context), and a second pass encodes the digests. Params without
 * paths never leave the synchronous fast path.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import xxhash from "xxhash-wasm"
import type { CacheKey, KeyParams } from "../schema/CacheKey.js"
import { NotSync } from "../shared/sync.js"
import { describeParams } from "./describeParams.js"
import { PathContext, toKeyError, withEncodedParams } from "./encoding.js"
import {
  nodeFileSystem,
  PATH_HASHING_DEFAULTS,
  type PathFileSystem,
  type PathHashingOptions,
  resolvePath,
  resolvePaths
} from "./pathHashing.js"
import * as Key from "./pathKey.js"
import { Hasher, KeyError, make as makeHasher, PathFingerprints, type PathHashProgress } from "./service.js"

type XXHashAPI = Awaited<ReturnType<typeof xxhash>>

const HASH_PIECE = 1 << 20

// One WebAssembly instance per process: every layer built shares it, and it is stateless per call.
let instance: Promise<XXHashAPI> | undefined
const loadXxhash = (): Promise<XXHashAPI> => (instance ??= xxhash())

/**
 * How the Hasher treats paths in key params. Every field optional.
 *
 * @since 0.1.0
 * @category models
 */
export interface HasherOptions {
  /** Key `Key.file`/`Key.dir`/`file:` URLs by content. Default true; false keys them by path string. */
  readonly hashPathContent?: boolean | undefined
  /** Use the `PathFingerprints` service when one is in context. Default true. */
  readonly fingerprints?: boolean | undefined
  /** Files read at once in a large tree. Default 8. */
  readonly concurrency?: number | undefined
  /** A tree with at least this many files is read in parallel. Default 80. */
  readonly parallelFiles?: number | undefined
  /** A tree with at least this many bytes is read in parallel. Default 4 GiB. */
  readonly parallelBytes?: number | undefined
  /** Called after each file hashed (and each MiB of a very large file). */
  readonly onProgress?: ((progress: PathHashProgress) => void) | undefined
  /** The file system paths are read through (tests inject failures). Default `node:fs`. */
  readonly fileSystem?: PathFileSystem | undefined
}

/**
 * Builds the service once xxhash-wasm is ready; everything after that is synchronous unless a key
 * names a path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: HasherOptions = {}): Effect.Effect<Hasher.Service> =>
  Effect.gen(function*() {
    const api = yield* Effect.promise(loadXxhash)
    const fingerprints = options.fingerprints === false ? Option.none() : yield* Effect.serviceOption(PathFingerprints)
    const pathOptions: PathHashingOptions = {
      concurrency: options.concurrency ?? PATH_HASHING_DEFAULTS.concurrency,
      parallelFiles: options.parallelFiles ?? PATH_HASHING_DEFAULTS.parallelFiles,
      parallelBytes: options.parallelBytes ?? PATH_HASHING_DEFAULTS.parallelBytes,
      onProgress: options.onProgress,
      fileSystem: options.fileSystem ?? nodeFileSystem,
      fingerprints: Option.getOrUndefined(fingerprints)
    }
    const byContent = options.hashPathContent !== false

    const h64Raw = api.h64Raw
    // h64Raw copies its input into WebAssembly memory, which grows to fit and never shrinks: a
    // 256 MiB value would pin 256 MiB for the process's life. Large inputs stream in 1 MiB pieces
    // (same XXH64 value), so the WASM memory stays at one piece.
    const hashBytes = (bytes: Uint8Array): string => {
      let hash: bigint
      if (bytes.byteLength <= HASH_PIECE) {
        hash = h64Raw(bytes, 0n)
      } else {
        const state = api.create64(0n)
        for (let at = 0; at < bytes.byteLength; at += HASH_PIECE) state.update(bytes.subarray(at, at + HASH_PIECE))
        hash = state.digest()
      }
      return hash.toString(16).padStart(16, "0")
    }
    // The same pieces as `hashBytes` (the WASM memory stays at one piece), fed as they come.
    const hashStream = (): Hasher.Stream => {
      const state = api.create64(0n)
      return {
        update: (piece) => {
          for (let at = 0; at < piece.byteLength; at += HASH_PIECE) state.update(piece.subarray(at, at + HASH_PIECE))
        },
        digest: () => state.digest().toString(16).padStart(16, "0")
      }
    }
    const keyOf = (params: KeyParams, paths: PathContext | undefined): CacheKey =>
      withEncodedParams(params, hashBytes, "Hasher.key", paths) as CacheKey
    const describeOf = (params: KeyParams) => describeParams(params, hashBytes, "Hasher.describe")

    /** The slow path: hash the paths the first pass met, then encode again with their digests. */
    const keyWithPaths = (params: KeyParams, first: PathContext) =>
      Effect.flatMap(resolvePaths(api, pathOptions, first.requests!), (digests) => {
        const paths = new PathContext(digests)
        try {
          const key = keyOf(params, paths)
          if (paths.requests === undefined) return Effect.succeed(key)
          return Effect.fail(
            new KeyError({
              reason: "Unhashable",
              method: "Hasher.key",
              path: "params",
              description: `a toCacheKey() named different paths on two calls (${
                paths.requests[0].path
              }); it must be deterministic`
            })
          )
        } catch (error) {
          return Effect.fail(asKeyError(error, "Hasher.key"))
        }
      })

    // No Effect.fn span on `key`: it runs on every get, whose whole budget is ~18 µs. A hand-written
    // suspend + try/catch measured ~0.9 µs per key inside a gen against ~1.7 µs for Effect.try.
    return makeHasher({
      key: (params) =>
        Effect.suspend(() => {
          const paths = byContent ? new PathContext() : undefined
          try {
            const key = keyOf(params, paths)
            if (paths?.requests === undefined) return Effect.succeed(key)
          } catch (error) {
            return Effect.fail(asKeyError(error, "Hasher.key"))
          }
          return keyWithPaths(params, paths)
        }),
      unsafeKey: (params) => {
        const paths = byContent ? new PathContext() : undefined
        try {
          const key = keyOf(params, paths)
          return paths?.requests === undefined ? key : NotSync
        } catch {
          return NotSync
        }
      },
      describe: (params) =>
        Effect.try({ try: () => describeOf(params), catch: (error) => asKeyError(error, "Hasher.describe") }),
      unsafeDescribe: (params) => {
        try {
          return describeOf(params)
        } catch {
          return NotSync
        }
      },
      hashBytes,
      hashStream,
      hashPath: (input) =>
        Effect.flatMap(
          Effect.try({
            try: () => Key.file(input).path,
            catch: (cause) =>
              new KeyError({
                reason: "InvalidKey",
                method: "Hasher.hashPath",
                path: "path",
                description: `not a local path: ${String(input)}`,
                cause
              })
          }),
          (absolute) =>
            Effect.flatMap(resolvePath(api, pathOptions, { kind: "auto", path: absolute }), (digest) => {
              switch (digest._tag) {
                case "File":
                case "Dir":
                  return Effect.succeed(digest.hash)
                case "Missing":
                  return Effect.fail(
                    new KeyError({
                      reason: "Unreadable",
                      method: "Hasher.hashPath",
                      path: "path",
                      description: `${absolute} does not exist`
                    })
                  )
                case "Failed":
                  return Effect.fail(
                    new KeyError({
                      reason: "Unreadable",
                      method: "Hasher.hashPath",
                      path: "path",
                      description: digest.description,
                      cause: digest.cause
                    })
                  )
              }
            })
        )
    })
  })

const asKeyError = (error: unknown, method: string): KeyError =>
  error instanceof KeyError ? error : toKeyError(error, method)

/**
 * The default `Hasher` layer: XXH64 (seed 0) over the canonical key encoding, paths by content,
 * fingerprints from a `PathFingerprints` service when the context has one.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<Hasher> = Layer.effect(Hasher, make())

/**
 * The `Hasher` layer with path hashing options.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (options: HasherOptions): Layer.Layer<Hasher> => Layer.effect(Hasher, make(options))
