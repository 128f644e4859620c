import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cache, layer, layerMemory } from "../src/Cache.js"
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

  // A batch counts what each entry would have counted read one at a time: its settled hits,
  // misses and bytes moved once for the batch, one latency observation per entry.
  const batchCounts = Effect.gen(function*() {
    const cache = yield* Cache
    const k1 = yield* cache.put({ k: 1 }, { a: 1 })
    const k2 = yield* cache.put({ k: 2 }, "y".repeat(200))
    const k3 = yield* cache.put({ k: 3 }, new Uint8Array(300_000).fill(3)) // a blob: the effectful read
    const before = yield* snapshot
    const found = yield* cache.getMany([k1, { k: 9 }, k2, k1, k3, { k: 8 }])
    assert.deepStrictEqual(found.map((f) => f._tag), ["Some", "None", "Some", "Some", "Some", "None"])
    const d = delta(before, yield* snapshot)
    const sizes = new Map((yield* cache.list()).map((e) => [e.key, e.storedBytes]))
    assert.deepStrictEqual(d, {
      hits: 4,
      misses: 2,
      bytesRead: 2 * sizes.get(k1)! + sizes.get(k2)! + sizes.get(k3)!,
      bytesWritten: 0,
      evictions: 0,
      expirations: 0,
      gets: 6,
      puts: 0
    })
  })

  it.effect("getMany counts each hit, miss and its bytes (memory)", () =>
    batchCounts.pipe(Effect.provide(layerMemory({ cleanupOnOpen: false, cleanupInterval: "100000 days" }))))

  it.scoped("getMany counts each hit, miss and its bytes (SQLite)", () =>
    Effect.gen(function*() {
      const directory = yield* Effect.acquireRelease(
        Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-metrics-"))),
        (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
      )
      yield* batchCounts.pipe(
        Effect.provide(layer({ directory, cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null }))
      )
    }))
})
