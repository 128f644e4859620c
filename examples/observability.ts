/**
 * Observability: the cache's spans and metrics exported through OpenTelemetry to the console.
 *
 * Management operations (`verify`, `list`, `stats`, `invalidate`, …) are spans (`Effect.fn`);
 * get/has/put are deliberately not (a span costs more than a cache hit) but are counted by
 * `CacheMetrics`: hits, misses, bytes read and written, evictions, expirations and latency.
 * `@effect/opentelemetry`'s `NodeSdk` bridges both to the OpenTelemetry SDK; here two tiny
 * exporters print one line per span and per metric. Swap in `ConsoleMetricExporter`,
 * `ConsoleSpanExporter` or the OTLP exporters at the same places for a real collector.
 *
 * Run: `npx tsx examples/observability.ts [directory]`
 */
import * as NodeSdk from "@effect/opentelemetry/NodeSdk"
import {
  AggregationTemporality,
  PeriodicExportingMetricReader,
  type PushMetricExporter,
  type ResourceMetrics
} from "@opentelemetry/sdk-metrics"
import { type ReadableSpan, SimpleSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base"
import { Effect } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cache, cached } from "../src/index.js"

/** `ExportResultCode.SUCCESS` of `@opentelemetry/core`. */
const SUCCESS = { code: 0 }

/** Prints each finished span as `span <name> <ms> ms` (the SQLite migrator's statements skipped). */
const spanPrinter: SpanExporter = {
  export: (spans: Array<ReadableSpan>, done) => {
    for (const span of spans) {
      if (span.name.startsWith("sql.")) continue
      const ms = span.duration[0] * 1e3 + span.duration[1] / 1e6
      console.log(`span    ${span.name.padEnd(24)} ${ms.toFixed(2).padStart(8)} ms`)
    }
    done(SUCCESS)
  },
  shutdown: () => Promise.resolve()
}

/** Prints each cacheness metric as `metric <name>{labels} <value>` (histograms: count and sum). */
const metricPrinter: PushMetricExporter = {
  export: (metrics: ResourceMetrics, done) => {
    for (const scope of metrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (!metric.descriptor.name.startsWith("cacheness_")) continue
        for (const point of metric.dataPoints) {
          const labels = Object.entries(point.attributes).map(([k, v]) => `${k}=${String(v)}`).join(",")
          const value = typeof point.value === "number"
            ? String(point.value)
            : `count=${point.value.count} sum=${(point.value.sum ?? 0).toFixed(3)}`
          console.log(`metric  ${metric.descriptor.name}{${labels}} ${value}`)
        }
      }
    }
    done(SUCCESS)
  },
  forceFlush: () => Promise.resolve(),
  shutdown: () => Promise.resolve(),
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE
}

const Telemetry = NodeSdk.layer(() => ({
  resource: { serviceName: "cacheness-example" },
  spanProcessor: new SimpleSpanProcessor(spanPrinter),
  // Exports once at the end (the reader flushes when the layer shuts down); a service would
  // export every few seconds.
  metricReader: new PeriodicExportingMetricReader({ exporter: metricPrinter, exportIntervalMillis: 3_600_000 })
}))

/** Stands in for a slow feature computation. */
const features = cached(
  (user: number) => Effect.as(Effect.sleep("20 millis"), { user, score: user / 10 }),
  { name: "features", ttl: "1 hour" }
)

const program = Effect.gen(function*() {
  const cache = yield* Cache.Cache
  for (let user = 0; user < 5; user++) yield* features(user) // 5 misses, computed and stored
  for (let user = 0; user < 5; user++) yield* features(user) // 5 hits
  yield* cache.put({ report: "daily" }, new Uint8Array(64 * 1024).fill(1))
  yield* cache.get({ report: "daily" })
  yield* cache.get({ report: "weekly" })
  yield* cache.list()
  yield* cache.verify()
  yield* cache.prune(0)
  const stats = yield* cache.stats()
  console.log(`stats   entries=${stats.entries} hits=${stats.hits} misses=${stats.misses}`)
}).pipe(Effect.withSpan("example"))

const directory = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-otel-"))
Effect.runPromise(
  program.pipe(
    Effect.provide(Cache.layer({ directory, cleanupOnOpen: false })),
    Effect.provide(Telemetry)
  )
).catch((error) => {
  console.error(error)
  process.exit(1)
})
