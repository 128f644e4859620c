/**
 * The `Cache` module of the public API: the service tag, its types and errors, and its layers.
 *
 * @since 0.1.0
 */
export { layer, layerConfig, layerMemory } from "./cache/layer.js"
export { layerFromServices } from "./cache/make.js"
export type { EngineOptions } from "./cache/options.js"
export * from "./cache/service.js"
export type { CacheConfig } from "./schema/CacheConfig.js"
export type { CacheEntry, CacheStats, IntegrityReport } from "./schema/CacheEntry.js"
export type { CacheKey, KeyInput, KeyParams } from "./schema/CacheKey.js"
export { metadataTable } from "./schema/MetadataTable.js"
export type {
  ColumnFilter,
  MetadataFilter,
  MetadataTable,
  MetadataTableOptions,
  QueryMetadataOptions
} from "./schema/MetadataTable.js"
