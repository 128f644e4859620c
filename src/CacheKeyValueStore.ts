/**
 * `CacheKeyValueStore`: an `@effect/platform` `KeyValueStore` over a namespace of the cache. It is
 * a store, not a cache: its entries never expire. Strings and `Uint8Array`s keep their type;
 * `size` and `clear` see its namespace only; `modify` is atomic across processes.
 *
 * @since 0.1.0
 */
export { DEFAULT_NAMESPACE, layer, make, type Options } from "./adapters/keyValueStore.js"
