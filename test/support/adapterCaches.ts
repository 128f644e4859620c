/**
 * The caches the adapter tests run on: one per metadata backend (memory, SQLite, JSON,
 * PostgreSQL), each a fresh, empty cache (a new directory or schema) whenever its layer is built.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Cache from "../../src/Cache.js"
import { pgAvailable, pgScopedSchema, pgUrl } from "./postgres.js"
import { tempDir } from "./tmp.js"

export interface AdapterCache {
  readonly name: string
  /** A fresh cache; `config` adds engine settings. */
  readonly layer: (config?: Cache.CacheConfig) => Layer.Layer<Cache.Cache, Cache.CacheError>
}

const onDisk = (name: string, metadataBackend: "sqlite" | "json"): AdapterCache => ({
  name,
  layer: (config) =>
    Layer.unwrapScoped(Effect.map(tempDir, (directory) => Cache.layer({ ...config, directory, metadataBackend })))
})

/** Every metadata backend; PostgreSQL when it is reachable (see support/postgres.ts for CI). */
export const adapterCaches: ReadonlyArray<AdapterCache> = [
  { name: "memory", layer: (config) => Cache.layerMemory(config) },
  onDisk("SQLite", "sqlite"),
  onDisk("JSON", "json"),
  ...(pgAvailable || process.env.CI === "true"
    ? [{
      name: "PostgreSQL",
      layer: (config?: Cache.CacheConfig) =>
        Layer.unwrapScoped(
          Effect.map(pgScopedSchema("adapters"), (schema) =>
            Cache.layer({
              ...config,
              metadataBackend: "postgres",
              blobs: "postgres",
              postgres: { url: pgUrl, schema }
            }))
        )
    }]
    : [])
]
