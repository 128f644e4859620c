/**
 * Effect Metrics of the cache: hits, misses, bytes read/written, evictions, expirations, latency.
 *
 * @since 0.1.0
 */
export * from "./cache/metrics.js"
