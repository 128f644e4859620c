/**
 * The `BlobStore` module of the public API: bytes by id, written atomically, read, deleted,
 * listed. The tag, its `Service` type, `StorageError`, `make(impl)` for your own store, and the
 * shipped stores as layers.
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import * as Redacted from "effect/Redacted"
import * as FileSystem from "./blob/fileSystem.js"
import * as Memory from "./blob/memory.js"
import * as Pg from "./blob/pg.js"
import * as S3 from "./blob/s3.js"
import { BlobStore } from "./blob/service.js"
import { ConfigError, StorageError } from "./errors.js"
import * as Validate from "./shared/validate.js"

export * from "./blob/service.js"

/**
 * What every blob store provides; write `put`, `get`, `delete` and `list` and let `make` fill in the rest.
 *
 * @since 0.1.0
 * @category models
 */
export type Service = BlobStore.Service

/**
 * Blobs as files in `directory`, sharded by id, each written to a temp file and renamed.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFileSystem = (
  options: { readonly directory: string }
): Layer.Layer<BlobStore, StorageError | ConfigError> =>
  Validate.layerOf(
    Validate.fields("BlobStore.layerFileSystem", options, { directory: Validate.nonEmptyString }),
    FileSystem.layer
  )

/**
 * A fresh, empty in-memory store per build of the layer (bytes copied in and out).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (): Layer.Layer<BlobStore> => Layer.sync(BlobStore, Memory.make)

/**
 * Blobs in PostgreSQL, in `schema` (default "public"), chunked; `url` may be `Redacted`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerPg = (options: {
  readonly url: string | Redacted.Redacted<string>
  readonly schema?: string | undefined
}): Layer.Layer<BlobStore, StorageError | ConfigError> =>
  Validate.layerOf(
    Validate.fields("BlobStore.layerPg", options, { url: Validate.url, schema: Validate.optionalString }),
    ({ schema, url }) => Pg.layer(schema === undefined ? { url } : { url, schema })
  )

/**
 * The options of `layerS3`: `bucket`, and optionally `prefix`, `endpoint`, `region`,
 * `forcePathStyle`, `credentials`, `multipartThreshold`, `concurrency`.
 *
 * @since 0.1.0
 * @category models
 */
export type S3Options = S3.Options

/**
 * Blobs as objects `${prefix}${id}` in an S3-compatible bucket, through `@aws-sdk/client-s3` and
 * `@aws-sdk/lib-storage` (optional peer dependencies; multipart above `multipartThreshold`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerS3 = (options: S3.Options): Layer.Layer<BlobStore, StorageError | ConfigError> => S3.layer(options)
