/**
 * Every error of cacheness, in one leaf module that everything may import: one
 * `Schema.TaggedError` per service, each with a `reason`, the `method`, an optional `cause` and a
 * readable `message`.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A key could not be derived from the given parameters.
 *
 * @since 0.1.0
 * @category errors
 */
export class KeyError extends Schema.TaggedError<KeyError>("cacheness/KeyError")("KeyError", {
  reason: Schema.Literal("Unhashable", "InvalidKey", "Unreadable"),
  method: Schema.String,
  /** where inside the key the problem is, e.g. `params.model.fit` */
  path: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.method}: ${this.path}: ${this.description}`
  }
}

/**
 * A value could not be encoded, or stored bytes could not be decoded.
 *
 * @since 0.1.0
 * @category errors
 */
export class CodecError extends Schema.TaggedError<CodecError>("cacheness/CodecError")("CodecError", {
  reason: Schema.Literal("Unserializable", "SchemaMismatch", "UnknownFormat", "Corrupt", "CompressionFailed"),
  method: Schema.String,
  format: Schema.optional(Schema.String),
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.method}${this.format === undefined ? "" : ` (${this.format})`}: ${this.description}`
  }
}

/**
 * A blob could not be written, read, deleted or listed.
 *
 * @since 0.1.0
 * @category errors
 */
export class StorageError extends Schema.TaggedError<StorageError>("cacheness/StorageError")("StorageError", {
  /**
   * `Unreadable`: a read that can never succeed (a directory or a file in the blob's path); the
   * cache treats it as a broken entry. `ReadFailed` may be transient (EIO, EMFILE) and stays an error.
   */
  reason: Schema.Literal(
    "WriteFailed",
    "ReadFailed",
    "DeleteFailed",
    "ListFailed",
    "InvalidId",
    "NoSpace",
    "PermissionDenied",
    "Unreadable",
    "TooLarge"
  ),
  method: Schema.String,
  id: Schema.optional(Schema.String),
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.method}${this.id === undefined ? "" : ` ${this.id}`}: ${this.description}`
  }
}

/**
 * The metadata store could not be opened, read or written.
 *
 * @since 0.1.0
 * @category errors
 */
export class MetadataError extends Schema.TaggedError<MetadataError>("cacheness/MetadataError")("MetadataError", {
  reason: Schema.Literal(
    "OpenFailed",
    "MigrationFailed",
    "QueryFailed",
    "WriteFailed",
    "Busy",
    "Corrupt",
    "NewerLayout",
    "InvalidRow",
    "UnknownTable",
    "Unsupported",
    "NoSpace"
  ),
  method: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.method}: ${this.description}`
  }
}

/**
 * The configuration is invalid. Raised when the layer is built; names the offending field.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConfigError extends Schema.TaggedError<ConfigError>("cacheness/ConfigError")("ConfigError", {
  reason: Schema.Literal("Invalid", "Unsupported"),
  field: Schema.String,
  description: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `invalid cache configuration: ${this.field}: ${this.description}`
  }
}

/**
 * Anything that went wrong in the cache itself; a failing `fetch` surfaces its own error instead.
 *
 * @since 0.1.0
 * @category errors
 */
export class SqlPullThroughError extends Schema.TaggedError<SqlPullThroughError>("cacheness/SqlPullThroughError")(
  "SqlPullThroughError",
  {
    reason: Schema.Literal(
      "InvalidConfig",
      "InvalidTable",
      "InvalidQuery",
      "InvalidRows",
      "FetchFailed",
      "StorageFailed",
      "ConnectionFailed"
    ),
    method: Schema.String,
    table: Schema.optional(Schema.String),
    description: Schema.String,
    cause: Schema.optional(Schema.Defect)
  }
) {
  /**
   * @since 0.1.0
   */
  override get message(): string {
    return `${this.method}${this.table === undefined ? "" : ` (${this.table})`}: ${this.description}`
  }
}

/**
 * Any error a cache operation can fail with.
 *
 * @since 0.1.0
 * @category errors
 */
export type CacheError = KeyError | CodecError | StorageError | MetadataError | ConfigError
