/**
 * The `Codec` module of the public API: value ⇄ bytes through a registry of format handlers,
 * compressed, with a header naming format and compression. The tag, its `Service` type,
 * `CodecError`, `make(impl)` for your own codec, `handler` / `makeHandler` for your own formats,
 * and the default codec as a layer.
 *
 * @since 0.1.0
 */
import * as Layer from "effect/Layer"
import * as Registry from "./codec/registry.js"
import { Codec } from "./codec/service.js"
import { ConfigError } from "./errors.js"
import * as Validate from "./shared/validate.js"

export type { CompressionOptions, Options } from "./codec/registry.js"
export * from "./codec/service.js"

/**
 * What every codec provides; write `encode`, `decode` and `inspect` and let `make` fill in the rest.
 *
 * @since 0.1.0
 * @category models
 */
export type Service = Codec.Service

const array: Validate.Check<ReadonlyArray<any> | undefined> = (field, input) =>
  input === undefined || Array.isArray(input)
    ? input as ReadonlyArray<any> | undefined
    : new ConfigError({ reason: "Invalid", field, description: `must be an array, got ${Validate.show(input)}` })

const tables: Validate.Check<"ipc" | "parquet" | undefined> = (field, input) =>
  input === undefined || input === "ipc" || input === "parquet"
    ? input
    : new ConfigError({
      reason: "Invalid",
      field,
      description: `must be "ipc" or "parquet", got ${Validate.show(input)}`
    })

/**
 * The default codec: your `handlers` first, then the built-in formats (buffer, bytes, ndarray,
 * Arrow, Parquet, Polars, JSON, v8), compressed as `compression` says.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Registry.Options): Layer.Layer<Codec, ConfigError> => {
  const checked = Validate.fields("Codec.layer", options, {
    handlers: array,
    compression: Validate.record,
    tables
  })
  return checked instanceof ConfigError ? Layer.fail(checked) : Registry.layer(checked as Registry.Options)
}
