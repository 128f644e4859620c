/**
 * Effect Metrics of every cache in the process: hits, misses, bytes read and written, evictions,
 * and get/put latency. Any Effect metrics exporter sees them (e.g. `@effect/opentelemetry`'s
 * `NodeSdk` with a metric reader; see `examples/observability.ts`), and `Metric.value` reads them.
 *
 * The get and put paths update them with `unsafeUpdate` — a plain function call, well under a
 * microsecond — instead of the `Metric.increment` effect, whose extra steps cost more than the
 * rest of a hit's bookkeeping. The price: ambient labels from `Effect.tagMetrics` do not apply to
 * these metrics; each carries its own `operation` label where it has one.
 *
 * @since 0.1.0
 */
import * as Metric from "effect/Metric"
import * as MetricBoundaries from "effect/MetricBoundaries"
import * as MetricKey from "effect/MetricKey"

/**
 * Reads that found a live, intact value (`get`, `getWithMetadata`, memoised calls).
 *
 * @since 0.1.0
 * @category metrics
 */
export const hits = Metric.counter("cacheness_hits", {
  description: "cache reads that returned a value",
  incremental: true
})

/**
 * Reads that found nothing, an expired entry, or one that failed its integrity check.
 *
 * @since 0.1.0
 * @category metrics
 */
export const misses = Metric.counter("cacheness_misses", {
  description: "cache reads that returned nothing",
  incremental: true
})

/**
 * Stored (compressed) bytes returned by hits.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesRead = Metric.counter("cacheness_bytes_read", {
  description: "stored bytes read by cache hits",
  incremental: true
})

/**
 * Stored (compressed) bytes written by puts.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesWritten = Metric.counter("cacheness_bytes_written", {
  description: "stored bytes written by puts",
  incremental: true
})

/**
 * Entries evicted to respect `maxSize` or by `prune`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const evictions = Metric.counter("cacheness_evictions", {
  description: "entries evicted (size limit or prune)",
  incremental: true
})

/**
 * Entries removed because they expired.
 *
 * @since 0.1.0
 * @category metrics
 */
export const expirations = Metric.counter("cacheness_expirations", {
  description: "expired entries removed",
  incremental: true
})

/** 5 µs … ~2.6 s in doublings: a hit takes tens of µs, a large put milliseconds. */
const latencyBoundaries = MetricBoundaries.exponential({ start: 0.005, factor: 2, count: 20 })

const latencyKey = MetricKey.histogram(
  "cacheness_operation_duration_ms",
  latencyBoundaries,
  "cache operation latency in milliseconds"
)

/**
 * Operation latency in milliseconds, labelled `operation` (`get`, `put`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const latency = Metric.fromMetricKey(latencyKey)

// The label is part of the key, not added per update: `Metric.tagged` would build a new label
// array and look the key up on every update (~300 ns instead of ~20).

/**
 * `latency` for `get` and `getWithMetadata`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const getLatency = Metric.fromMetricKey(MetricKey.tagged(latencyKey, "operation", "get"))

/**
 * `latency` for `put`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const putLatency = Metric.fromMetricKey(MetricKey.tagged(latencyKey, "operation", "put"))
