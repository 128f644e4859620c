/**
 * Key parameters with a meaning beyond their structure: files and directories hashed by content.
 *
 * ```ts
 * yield* cache.put({ model: "xgb", data: Key.file("data/train.csv") }, scores)
 * yield* cache.get({ model: "xgb", data: Key.dir(new URL("file:///srv/images/")) })
 * ```
 *
 * `Key.file(path)` is keyed by the XXH64 of the file's bytes, `Key.dir(path)` by the sorted
 * (relative path, content hash) pairs of every regular file below it, so the same bytes under
 * another name hit and an edit misses. A `URL` with the `file:` protocol anywhere in the params is
 * hashed the same way (file or directory, whichever it is). With `hashPathContent: false`, or when
 * the path does not exist (a warning is logged), the key holds the absolute path string instead.
 * See docs/PATH_KEYS.md for the directory policies (symlinks, empty directories, special files)
 * and the stat fingerprint cache.
 *
 * @since 0.1.0
 */
import * as path from "node:path"
import { fileURLToPath } from "node:url"

/**
 * @since 0.1.0
 * @category models
 */
export type PathKind = "file" | "dir"

/**
 * A file or directory inside key params, hashed by content. Build with `Key.file` / `Key.dir`.
 *
 * @since 0.1.0
 * @category models
 */
export class PathKey {
  /**
   * @since 0.1.0
   */
  readonly _tag = "PathKey"
  /**
   * @since 0.1.0
   */
  constructor(
    /** What the path must be; anything else is a `KeyError`. */
    readonly kind: PathKind,
    /** Absolute, resolved against the working directory when the marker was made. */
    readonly path: string
  ) {}

  /**
   * @since 0.1.0
   */
  toJSON(): unknown {
    return this.kind === "file" ? { $file: this.path } : { $dir: this.path }
  }

  /**
   * @since 0.1.0
   */
  toString(): string {
    return `Key.${this.kind}(${JSON.stringify(this.path)})`
  }
}

const absolute = (input: string | URL): string => path.resolve(input instanceof URL ? fileURLToPath(input) : input)

/**
 * A file keyed by its content (streamed XXH64). A relative path is resolved now, against the
 * current working directory; a `file:` URL is accepted too.
 *
 * @since 0.1.0
 * @category constructors
 */
export const file = (input: string | URL): PathKey => new PathKey("file", absolute(input))

/**
 * A directory keyed by the sorted (relative path, content hash) pairs of every regular file below.
 *
 * @since 0.1.0
 * @category constructors
 */
export const dir = (input: string | URL): PathKey => new PathKey("dir", absolute(input))

/**
 * @since 0.1.0
 * @category guards
 */
export const isPathKey = (u: unknown): u is PathKey => u instanceof PathKey

/**
 * Whether a value is a `URL` with the `file:` protocol (hashed by content inside key params).
 *
 * @since 0.1.0
 * @category guards
 */
export const isFileUrl = (u: unknown): u is URL => u instanceof URL && u.protocol === "file:"
