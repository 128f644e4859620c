/**
 * What CacheMetrics cost on the get path: the per-hit bookkeeping (two clock reads, two counter
 * updates, one histogram update) beside the alternatives — the `Metric.increment` effect, a bare
 * `yield* Effect.void`, and an `Effect.fn` span — so the choice of `unsafeUpdate` stays justified.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as CacheMetrics from "../src/cache/metrics.js"
import { fmt, isMain, now, table } from "./support.js"

const N = 200_000
const none: ReadonlyArray<never> = []

const perCallNs = (f: () => void): number => {
  for (let i = 0; i < N / 10; i++) f()
  const t = now()
  for (let i = 0; i < N; i++) f()
  return ((now() - t) * 1e6) / N
}

const perYieldNs = (step: Effect.Effect<void>): number => {
  const loop = Effect.gen(function*() {
    for (let i = 0; i < N; i++) yield* step
  })
  Effect.runSync(loop)
  const t = now()
  Effect.runSync(loop)
  return ((now() - t) * 1e6) / N
}

/**
 * @since 0.1.0
 */
export const run = async (): Promise<void> => {
  const clock = Effect.runSync(Effect.clock)
  const hit = () => {
    const started = clock.unsafeCurrentTimeNanos()
    CacheMetrics.hits.unsafeUpdate(1, none)
    CacheMetrics.bytesRead.unsafeUpdate(150, none)
    CacheMetrics.getLatency.unsafeUpdate(Number(clock.unsafeCurrentTimeNanos() - started) / 1e6, none)
  }
  const span = Effect.fn("bench.span")(function*() {})
  const tagged = Metric.tagged(CacheMetrics.latency, "operation", "bench")
  table(`metrics: cost per update, ns (${N.toLocaleString("en-US")} calls; a get hit is ~20,000 ns)`, [
    ["operation", "ns"],
    ["counter.unsafeUpdate", fmt(perCallNs(() => CacheMetrics.hits.unsafeUpdate(1, none)))],
    ["histogram.unsafeUpdate (label in key)", fmt(perCallNs(() => CacheMetrics.getLatency.unsafeUpdate(0.02, none)))],
    ["histogram via Metric.tagged", fmt(perCallNs(() => tagged.unsafeUpdate(0.02, none)))],
    ["hit bookkeeping (what get does)", fmt(perCallNs(hit))],
    ["yield* Effect.void (one step)", fmt(perYieldNs(Effect.void))],
    ["yield* Metric.increment(counter)", fmt(perYieldNs(Metric.increment(CacheMetrics.hits)))],
    ["yield* Effect.fn span", fmt(perYieldNs(span()))]
  ])
}

if (isMain(import.meta.url)) await run()
