// The read hot path settles a plain `get`/`has` synchronously when the stores can (a live inline
// entry, a key without paths); `get(key, {})` always takes the effect path. Both must answer the
// same for every value kind, size (inline or blob), TTL and clock position — on SQLite and memory.
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import fc from "fast-check"
import * as Cache from "../src/Cache.js"
import { tempDir } from "./support/tmp.js"

const value = fc.oneof(
  fc.jsonValue(),
  fc.constant(undefined),
  fc.constant(null),
  fc.date({ noInvalidDate: true }),
  fc.uint8Array({ maxLength: 64 }),
  fc.float64Array({ maxLength: 32 }),
  // Larger than the inline threshold below: stored as a blob.
  fc.integer({ min: 600, max: 2_000 }).map((n) => new Uint8Array(n).map((_, i) => (i * 31) & 0xff)),
  fc.record({ id: fc.integer(), tags: fc.array(fc.string()), at: fc.date({ noInvalidDate: true }), n: fc.bigInt() })
)

const step = fc.record({
  user: fc.integer({ min: 0, max: 5 }),
  value,
  ttlMinutes: fc.option(fc.integer({ min: 1, max: 120 }), { nil: null }),
  advanceMinutes: fc.integer({ min: 0, max: 90 })
})

const agree = (layer: Layer.Layer<Cache.Cache, Cache.CacheError>) =>
  Effect.gen(function*() {
    const steps = fc.sample(fc.array(step, { minLength: 1, maxLength: 25 }), { numRuns: 30, seed: 20261124 })
    for (const run of steps) {
      yield* Effect.scoped(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          for (const s of run) {
            const key = { user: s.user, region: "eu" }
            yield* cache.put(key, s.value, { ttl: s.ttlMinutes === null ? null : `${s.ttlMinutes} minutes` })
            yield* TestClock.adjust(`${s.advanceMinutes} minutes`)
            for (let user = 0; user <= 5; user++) {
              const probe = { user, region: "eu" }
              const fast = yield* cache.get(probe)
              const slow = yield* cache.get(probe, {})
              assert.deepStrictEqual(fast, slow, `get of user ${user}`)
              assert.strictEqual(yield* cache.has(probe), Option.isSome(slow), `has of user ${user}`)
              const byKey = yield* cache.get(yield* cache.key(probe))
              assert.deepStrictEqual(byKey, slow, `get by key of user ${user}`)
            }
          }
          const stats = yield* cache.stats()
          assert.strictEqual(stats.hits + stats.misses, run.length * 6 * 3)
        }).pipe(Effect.provide(layer))
      )
    }
  })

describe("read paths", () => {
  it.scoped(
    "the synchronous and the effect path agree on SQLite + files",
    () =>
      Effect.flatMap(
        tempDir,
        (directory) =>
          agree(Layer.unwrapEffect(Effect.sync(() =>
            Cache.layer({ directory: `${directory}/${Math.random()}`, inlineThreshold: 512, maxSize: null })
          )))
      ),
    { timeout: 60_000 }
  )

  it.scoped(
    "the synchronous and the effect path agree in memory",
    () => agree(Cache.layerMemory({ inlineThreshold: 512, maxSize: null })),
    { timeout: 60_000 }
  )
})
