/**
 * `cacheness/keyv`: `KeyvCacheness`, a Keyv (v6) storage adapter over a cacheness cache, for Keyv
 * and what sits on it (cache-manager, cacheable, NestJS's cache module).
 *
 * @since 0.1.0
 */
export { type Capabilities, DEFAULT_NAMESPACE, KeyvCacheness, type KeyvEntry, STORE_DEFAULTS } from "./adapters/keyv.js"
