/**
 * The engine's own policies, as `Cache.layerFromServices` takes them: what the cache decides over
 * whatever stores it is given. Where the data lives (directory, backends, PostgreSQL), how values
 * are encoded (compression, handlers, tables) and how paths are hashed belong to the layers of the
 * services, so they are errors here that say where they go.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import type { CacheConfig } from "../schema/CacheConfig.js"
import * as Validate from "../shared/validate.js"
import { resolveConfig } from "./config.js"
import { ConfigError, type ResolvedConfig } from "./service.js"

/**
 * The policies of the engine: TTL, size limit, housekeeping, integrity, signing, inline
 * threshold and custom metadata tables.
 *
 * @since 0.1.0
 * @category models
 */
export type EngineOptions = Pick<
  CacheConfig,
  | "defaultTtl"
  | "maxSize"
  | "cleanupOnOpen"
  | "cleanupInterval"
  | "verifyIntegrity"
  | "storeKeyParams"
  | "inlineThreshold"
  | "signing"
  | "metadataTables"
  | "memory"
>

const ENGINE_FIELDS: ReadonlyArray<keyof EngineOptions> = [
  "defaultTtl",
  "maxSize",
  "cleanupOnOpen",
  "cleanupInterval",
  "verifyIntegrity",
  "storeKeyParams",
  "inlineThreshold",
  "signing",
  "metadataTables",
  "memory"
]

/** Fields of `CacheConfig` that choose or configure a service, and where they go instead. */
const SERVICE_FIELDS: Readonly<Record<string, string>> = {
  directory: "Cache.layer (or the stores' own layers, e.g. MetadataStore.layerSqlite({ filename }))",
  metadataBackend: "Cache.layer, or provide the MetadataStore you want",
  blobs: "Cache.layer, or provide the BlobStore you want",
  postgres: "Cache.layer, or MetadataStore.layerPg / BlobStore.layerPg",
  s3: "Cache.layer, or BlobStore.layerS3",
  permissions: "Cache.layer (or the file-system store's own layer)",
  compression: "Cache.layer, or Codec.layer(options)",
  handlers: "Cache.layer, or Codec.layer(options)",
  tables: "Cache.layer, or Codec.layer(options)",
  hashPathContent: "Cache.layer, or the Hasher's layer",
  pathHashing: "Cache.layer, or the Hasher's layer"
}

/**
 * Validates the engine's options and applies the defaults `Cache.layer` applies. A field that
 * belongs to a service layer, or any unknown field, is a `ConfigError` naming it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const resolveEngineOptions = (options: unknown): Effect.Effect<ResolvedConfig, ConfigError> =>
  Effect.suspend(() => {
    if (options !== undefined && options !== null && typeof options === "object" && !Array.isArray(options)) {
      let names: ReadonlyArray<string>
      try {
        names = Object.keys(options)
      } catch (cause) {
        return Effect.fail(
          new ConfigError({
            reason: "Invalid",
            field: "layerFromServices",
            description: `options could not be read: ${Validate.show(cause)}`,
            cause
          })
        )
      }
      for (const name of names) {
        const instead = SERVICE_FIELDS[name]
        if (instead !== undefined) {
          return Effect.fail(
            new ConfigError({
              reason: "Invalid",
              field: `layerFromServices.${name}`,
              description: `${name} is chosen by the services in context, not by the engine; use ${instead}`
            })
          )
        }
      }
    }
    const checked = Validate.options("layerFromServices", options, ENGINE_FIELDS)
    if (checked instanceof ConfigError) return Effect.fail(checked)
    const given: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(checked)) if (value !== undefined) given[name] = value
    // The backend fields only tell `resolveConfig` that no directory is needed: the stores used
    // are the ones in context.
    return resolveConfig({ ...given, metadataBackend: "memory", blobs: "memory" } as CacheConfig, { memory: true })
  })
