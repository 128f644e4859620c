/**
 * `CachePersistence`: an `@effect/experimental` `BackingPersistence` over the cache, so
 * `Persistence.layerResult`, `PersistedCache` and friends persist to cacheness. Each
 * `make(storeId)` is a namespace; TTLs are entry TTLs; values are stored natively.
 *
 * @since 0.1.0
 */
export { layer, make, type Options } from "./adapters/persistence.js"
