import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as TestClock from "effect/TestClock"
import { Cache, layerMemory } from "../src/Cache.js"
import { CacheMetrics } from "../src/index.js"

const counters = {
  hits: CacheMetrics.hits,
  misses: CacheMetrics.misses,
  bytesRead: CacheMetrics.bytesRead,
  bytesWritten: CacheMetrics.bytesWritten,
  evictions: CacheMetrics.evictions,
  expirations: CacheMetrics.expirations
}

const snapshot = Effect.gen(function*() {
  const out: Record<string, number> = {}
  for (const [name, counter] of Object.entries(counters)) out[name] = (yield* Metric.value(counter)).count
  out.gets = (yield* Metric.value(CacheMetrics.getLatency)).count
  out.puts = (yield* Metric.value(CacheMetrics.putLatency)).count
  return out
})

const delta = (before: Record<string, number>, after: Record<string, number>) =>
  Object.fromEntries(Object.keys(after).map((k) => [k, after[k] - before[k]]))

describe("CacheMetrics", () => {
  it.effect("count hits, misses, bytes, evictions, expirations and get/put latency", () =>
    Effect.gen(function*() {
      const before = yield* snapshot
      const cache = yield* Cache
      const k1 = yield* cache.put({ k: 1 }, "x".repeat(3_000), { ttl: "1 hour" })
      yield* cache.put({ k: 2 }, new Uint8Array(2_000).fill(7))
      const stored = (yield* cache.list()).reduce((n, e) => n + e.storedBytes, 0)
      yield* cache.get(k1)
      yield* cache.get(k1)
      yield* cache.getWithMetadata({ k: 2 })
      yield* cache.get({ k: 3 })
      yield* cache.has({ k: 1 }) // not a read: counts nothing
      const readBytes = (yield* cache.list()).reduce((n, e) => n + e.storedBytes * e.hits, 0)
      yield* TestClock.adjust("2 hours")
      yield* cache.get(k1) // expired: a miss
      yield* cache.cleanupExpired()
      const k4 = yield* cache.put({ k: 4 }, 1)
      const k4Bytes = (yield* cache.list()).find((e) => e.key === k4)!.storedBytes
      yield* cache.prune(0)
      const d = delta(before, yield* snapshot)
      assert.deepStrictEqual(d, {
        hits: 3,
        misses: 2,
        bytesRead: readBytes,
        bytesWritten: stored + k4Bytes,
        evictions: 2,
        expirations: 1,
        gets: 5,
        puts: 3
      })
    }).pipe(Effect.provide(layerMemory({ cleanupOnOpen: false, cleanupInterval: "100000 days" }))))
})
