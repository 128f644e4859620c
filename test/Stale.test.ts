/**
 * Stale values (issue 19): `cached`'s `staleWhileRevalidate`, `staleIfError` and `refreshAhead`,
 * driven by TestClock, on memory and SQLite, and the Promise twin. The grace of single entries
 * (`put({ grace })`, `allowStale`, `has`, `cleanupExpired`) is in the contract suites
 * (src/testing/CacheSuite.ts, MetadataStoreSuite.ts), so every backend runs it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as Cache from "../src/Cache.js"
import { cached, cacheness } from "../src/index.js"
import { runChild } from "./support/child.js"
import { tempDir } from "./support/tmp.js"

/** Housekeeping off, so TestClock jumps don't run cleanups. */
const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

const layers = {
  memory: () => Cache.layerMemory(manual),
  sqlite: () => Layer.unwrapScoped(Effect.map(tempDir, (directory) => Cache.layer({ ...manual, directory })))
} as const

class Down extends Schema.TaggedError<Down>()("Down", { run: Schema.Number }) {}

/** A source that counts its runs, answers `v<run>`, and fails with `Down` while `failing`. */
const source = () => {
  const state = { runs: 0, failing: false }
  const fetch = (id: number) =>
    Effect.suspend(() => {
      const run = ++state.runs
      return state.failing ? Effect.fail(new Down({ run })) : Effect.succeed(`${id}:v${run}`)
    })
  return [state, fetch] as const
}

/** Waits (real time) for background fibers until `condition` holds. */
const eventually = (condition: () => boolean, what: string) =>
  Effect.gen(function*() {
    for (let i = 0; i < 400 && !condition(); i++) {
      yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
    }
    assert.isTrue(condition(), `timed out waiting for ${what}`)
  })

/** Lets background fibers run for a while (real time), for asserting that nothing starts. */
const quiet = Effect.promise(() => new Promise((r) => setTimeout(r, 100)))

/** Captures warnings logged while `self` runs. */
const withWarnings = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
  })
  return Effect.map(Effect.provide(self, Logger.replace(Logger.defaultLogger, logger)), (a) => [a, warnings] as const)
}

for (const [backend, layer] of Object.entries(layers)) {
  describe(`stale values on ${backend}`, () => {
    it.scoped("staleWhileRevalidate: three concurrent stale calls get the stale value, one recomputation, then the new value", () =>
      Effect.gen(function*() {
        const [state, fetch] = source()
        const f = cached(fetch, { name: "swr", ttl: "1 hour", staleWhileRevalidate: "1 hour" })
        assert.strictEqual(yield* f(1), "1:v1")
        yield* TestClock.adjust("61 minutes")
        const answers = yield* Effect.all([f(1), f(1), f(1)], { concurrency: "unbounded" })
        assert.deepStrictEqual(answers, ["1:v1", "1:v1", "1:v1"], "answered at once with the stale value")
        yield* eventually(() => state.runs === 2, "the background recomputation")
        // The new value is stored once the background fiber's put lands.
        const cache = yield* Cache.Cache
        for (let i = 0; i < 400; i++) {
          if (yield* cache.has({ fn: "swr", args: [1] })) break
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
        }
        assert.strictEqual(yield* f(1), "1:v2", "the new value is served afterwards")
        assert.strictEqual(yield* f(1), "1:v2")
        yield* quiet
        assert.strictEqual(state.runs, 2, "exactly one recomputation")
      }).pipe(Effect.provide(layer())))

    it.scoped("staleWhileRevalidate: a failing background recomputation keeps the stale value and logs a warning", () =>
      Effect.gen(function*() {
        const [state, fetch] = source()
        const f = cached(fetch, { name: "swr-fail", ttl: "1 hour", staleWhileRevalidate: "1 hour" })
        assert.strictEqual(yield* f(2), "2:v1")
        yield* TestClock.adjust("90 minutes")
        state.failing = true
        const [answer, warnings] = yield* withWarnings(
          Effect.gen(function*() {
            const answer = yield* f(2)
            yield* eventually(() => state.runs === 2, "the background recomputation")
            yield* quiet
            return answer
          })
        )
        assert.strictEqual(answer, "2:v1")
        assert.isTrue(warnings.some((w) => w.includes("background recomputation")), warnings.join("\n"))
        assert.strictEqual(yield* f(2), "2:v1", "still the stale value after the failure")
        // Past the window (the grace ends with it), the entry is gone: the failure surfaces.
        yield* eventually(() => state.runs >= 3, "the retried background recomputation")
        yield* quiet
        yield* TestClock.adjust("31 minutes")
        const exit = yield* Effect.exit(f(2))
        assert.isTrue(Exit.isFailure(exit), "past staleWhileRevalidate the failure surfaces")
      }).pipe(Effect.provide(layer())))

    it.scoped("staleIfError: inside the window a call recomputes and a typed failure answers with the stale value; past it the failure surfaces", () =>
      Effect.gen(function*() {
        const [state, fetch] = source()
        const f = cached(fetch, { name: "sie", ttl: "1 hour", staleIfError: "1 hour" })
        assert.strictEqual(yield* f(3), "3:v1")
        yield* TestClock.adjust("70 minutes")
        state.failing = true
        const [answer, warnings] = yield* withWarnings(f(3))
        assert.strictEqual(answer, "3:v1", "the stale value instead of the failure")
        assert.strictEqual(state.runs, 2, "the call recomputed")
        assert.isTrue(warnings.some((w) => w.includes("staleIfError")), warnings.join("\n"))
        state.failing = false
        assert.strictEqual(yield* f(3), "3:v3", "a recomputation that succeeds answers with its value")
        assert.strictEqual(yield* f(3), "3:v3")
        assert.strictEqual(state.runs, 3)
        // Stored at 70 min: fresh until 130, stale (for errors) until 190.
        yield* TestClock.adjust("125 minutes")
        state.failing = true
        const exit = yield* Effect.exit(f(3))
        assert.deepStrictEqual(exit, Exit.fail(new Down({ run: 4 })), "past staleIfError the failure surfaces")
      }).pipe(Effect.provide(layer())))

    it.scoped("staleIfError alone does not serve stale values without recomputing", () =>
      Effect.gen(function*() {
        const [state, fetch] = source()
        const f = cached(fetch, { name: "sie-only", ttl: "1 hour", staleIfError: "1 hour" })
        yield* f(4)
        yield* TestClock.adjust("61 minutes")
        assert.strictEqual(yield* f(4), "4:v2")
        assert.strictEqual(state.runs, 2)
      }).pipe(Effect.provide(layer())))

    it.scoped("refreshAhead: a hit before the window starts nothing; a hit inside it returns the value and recomputes once in the background", () =>
      Effect.gen(function*() {
        const [state, fetch] = source()
        const f = cached(fetch, { name: "ahead", ttl: "1 hour", refreshAhead: "10 minutes" })
        assert.strictEqual(yield* f(5), "5:v1")
        yield* TestClock.adjust("45 minutes")
        assert.strictEqual(yield* f(5), "5:v1")
        yield* quiet
        assert.strictEqual(state.runs, 1, "before the window: no recomputation")
        yield* TestClock.adjust("10 minutes")
        const answers = yield* Effect.all([f(5), f(5), f(5)], { concurrency: "unbounded" })
        assert.deepStrictEqual(answers, ["5:v1", "5:v1", "5:v1"], "inside the window: the held value at once")
        yield* eventually(() => state.runs === 2, "the refresh")
        const cache = yield* Cache.Cache
        for (let i = 0; i < 400; i++) {
          const entry = yield* cache.getWithMetadata({ fn: "ahead", args: [5] })
          if (entry._tag === "Some" && entry.value.value === "5:v2") break
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
        }
        assert.strictEqual(yield* f(5), "5:v2")
        // Refreshed at 55 min: fresh until 115, refreshed again from 105.
        yield* TestClock.adjust("30 minutes")
        assert.strictEqual(yield* f(5), "5:v2")
        yield* quiet
        assert.strictEqual(state.runs, 2, "the key never expired under its callers")
      }).pipe(Effect.provide(layer())))

    it.effect("a background recomputation is interrupted when the cache layer closes", () =>
      Effect.gen(function*() {
        const flags = { started: false, interrupted: false }
        let runs = 0
        const f = cached(
          (n: number) =>
            Effect.suspend(() =>
              ++runs === 1
                ? Effect.succeed(n)
                : Effect.zipRight(Effect.sync(() => (flags.started = true)), Effect.never).pipe(
                  Effect.onInterrupt(() => Effect.sync(() => (flags.interrupted = true)))
                )
            ),
          { name: "hang", ttl: "1 hour", staleWhileRevalidate: "1 hour" }
        )
        yield* Effect.scoped(
          Effect.gen(function*() {
            yield* f(6)
            yield* TestClock.adjust("61 minutes")
            assert.strictEqual(yield* f(6), 6)
            yield* eventually(() => flags.started, "the background recomputation to start")
          }).pipe(Effect.provide(layer()))
        )
        assert.isTrue(flags.interrupted, "closing the layer interrupted the background fiber")
      }))

    it.effect("bad stale options fail every call with a ConfigError and run nothing", () =>
      Effect.gen(function*() {
        const [state, fetch] = source()
        for (
          const options of [
            { staleWhileRevalidate: "soon" },
            { staleIfError: -5 },
            { refreshAhead: null },
            { staleWhileRevalidate: Infinity }
          ] as const
        ) {
          const f = cached(fetch, { name: "bad", ...(options as any) })
          const exit = yield* Effect.exit(f(1))
          assert.isTrue(Exit.isFailure(exit))
          const error = (exit as any).cause.error
          assert.strictEqual(error._tag, "ConfigError", String(error))
          assert.match(error.message, /cached\.(staleWhileRevalidate|staleIfError|refreshAhead)/)
        }
        assert.strictEqual(state.runs, 0)
      }).pipe(Effect.provide(layer())))
  })
}

describe("stale values, Promise twin", () => {
  it.live(
    "memoize: staleWhileRevalidate answers at once and recomputes once; staleIfError answers a rejection with the stale value",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const cache = cacheness({ directory })
        yield* Effect.addFinalizer(() => Effect.promise(() => cache.close()))
        const state = { runs: 0, failing: false }
        const fetch = async (id: number) => {
          const run = ++state.runs
          await new Promise((r) => setTimeout(r, 20))
          if (state.failing) throw new RangeError(`down (${run})`)
          return `${id}:v${run}`
        }
        const swr = cache.memoize(fetch, { name: "p-swr", ttl: 300, staleWhileRevalidate: "1 minute" })
        assert.strictEqual(yield* Effect.promise(() => swr(1)), "1:v1")
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 400)))
        const answers = yield* Effect.promise(() => Promise.all([swr(1), swr(1), swr(1)]))
        assert.deepStrictEqual(answers, ["1:v1", "1:v1", "1:v1"])
        yield* eventually(() => state.runs === 2, "the background recomputation")
        for (let i = 0; i < 400; i++) {
          if ((yield* Effect.promise(() => swr(1))) === "1:v2") break
          yield* Effect.promise(() => new Promise((r) => setTimeout(r, 5)))
        }
        assert.strictEqual(yield* Effect.promise(() => swr(1)), "1:v2")
        assert.strictEqual(state.runs, 2)

        const sie = cache.memoize(fetch, { name: "p-sie", ttl: 300, staleIfError: "1 minute" })
        assert.strictEqual(yield* Effect.promise(() => sie(2)), "2:v3")
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 400)))
        state.failing = true
        assert.strictEqual(yield* Effect.promise(() => sie(2)), "2:v3", "the stale value instead of the rejection")
        assert.strictEqual(state.runs, 4)
        const fresh = cache.memoize(fetch, { name: "p-none", ttl: 300 })
        const rejected = yield* Effect.promise(() => fresh(3).then(() => null, (e) => e))
        assert.instanceOf(rejected, RangeError, "without staleIfError the rejection surfaces")
      }).pipe(Effect.scoped),
    30_000
  )
})

describe("cacheness list shows fresh / stale", () => {
  it.live("each entry's state: fresh, stale (with when it goes), expired", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.promise(async () => {
        const cache = cacheness({ directory })
        await cache.put({ a: "fresh" }, 1, { ttl: "1 hour" })
        await cache.put({ a: "stale" }, 2, { ttl: 1, grace: "1 hour" })
        await cache.put({ a: "expired" }, 3, { ttl: 1 })
        await new Promise((r) => setTimeout(r, 20))
        await cache.close()
      })
      const result = yield* Effect.promise(() => runChild("src/cli/main.ts", ["list", "--dir", directory]))
      assert.strictEqual(result.code, 0, result.stderr)
      const rows = result.stdout.split("\n")
      const rowOf = (name: string) => rows.find((line) => line.includes(`a=${name}`)) ?? ""
      assert.match(rowOf("fresh"), /\bfresh\b/)
      assert.match(rowOf("stale"), /stale \(gone in \d+ min\)/)
      assert.match(rowOf("expired"), /expired\s+a=expired/)
      const json = yield* Effect.promise(() => runChild("src/cli/main.ts", ["list", "--dir", directory, "--json"]))
      const entries = JSON.parse(json.stdout) as Array<{ expiresAt: number; staleUntil: number }>
      assert.deepStrictEqual(
        entries.map((e) => e.staleUntil - e.expiresAt).sort((a, b) => a - b),
        [0, 0, 3_600_000],
        "staleUntil in the JSON listing"
      )
    }).pipe(Effect.scoped), 60_000)
})
