import { assert, describe, it } from "@effect/vitest"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { pipe } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { cached, cacheness, memoize, type Memoized, memoized } from "../src/index.js"
import { runChild, startChild } from "./support/child.js"
import { tempDir } from "./support/tmp.js"

/** Housekeeping off, so TestClock jumps don't run cleanups (see CacheSuite `manualCleanup`). */
const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

const layers = {
  memory: () => Cache.layerMemory(manual),
  sqlite: () => Layer.unwrapScoped(Effect.map(tempDir, (directory) => Cache.layer({ ...manual, directory })))
} as const

class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.Number }) {}

/** A function that counts its runs. */
const counting = <A, E = never>(body: (n: number) => Effect.Effect<A, E>) => {
  const counter = { runs: 0 }
  const fn = (n: number) =>
    Effect.suspend(() => {
      counter.runs++
      return body(n)
    })
  return [counter, fn] as const
}

/** Captures warnings logged while `self` runs. */
const withWarnings = <A, E, R>(self: Effect.Effect<A, E, R>) => {
  const warnings: Array<string> = []
  const logger = Logger.make(({ logLevel, message }) => {
    if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
  })
  return Effect.map(Effect.provide(self, Logger.replace(Logger.defaultLogger, logger)), (a) => [a, warnings] as const)
}

for (const [backend, layer] of Object.entries(layers)) {
  describe(`cached on ${backend}`, () => {
    it.scoped("TTL counts from when the value is stored (TestClock)", () =>
      Effect.gen(function*() {
        const [counter, square] = counting((n: number) => Effect.succeed(n * n))
        const f = cached(square, { name: "square", ttl: "1 hour" })
        assert.strictEqual(yield* f(3), 9)
        yield* TestClock.adjust("59 minutes")
        assert.strictEqual(yield* f(3), 9)
        assert.strictEqual(counter.runs, 1)
        yield* TestClock.adjust("2 minutes")
        assert.strictEqual(yield* f(3), 9)
        assert.strictEqual(counter.runs, 2, "expired after an hour, even from memory")
      }).pipe(Effect.provide(layer())))

    it.scoped("a computation slower than its TTL is still served once stored", () =>
      Effect.gen(function*() {
        const [counter, slow] = counting((n: number) => Effect.as(Effect.sleep("2 hours"), n + 1))
        const f = cached(slow, { name: "slow", ttl: "1 hour" })
        const fiber = yield* Effect.fork(f(1))
        yield* TestClock.adjust("2 hours")
        assert.strictEqual(yield* Fiber.join(fiber), 2)
        yield* TestClock.adjust("30 minutes")
        assert.strictEqual(yield* f(1), 2)
        assert.strictEqual(counter.runs, 1)
        yield* TestClock.adjust("31 minutes")
        const again = yield* Effect.fork(f(1))
        yield* TestClock.adjust("2 hours")
        yield* Fiber.join(again)
        assert.strictEqual(counter.runs, 2)
      }).pipe(Effect.provide(layer())))

    it.live("100 concurrent calls run the computation once and share its value", () =>
      Effect.gen(function*() {
        const [counter, work] = counting((n: number) => Effect.as(Effect.sleep("30 millis"), { n, at: "done" }))
        const f = cached(work, { name: "work" })
        const results = yield* Effect.all(Array.from({ length: 100 }, () => f(7)), { concurrency: "unbounded" })
        assert.strictEqual(counter.runs, 1)
        for (const r of results) assert.deepStrictEqual(r, { n: 7, at: "done" })
        assert.deepStrictEqual(yield* f.info, { hits: 99, misses: 1, entries: 1 })
      }).pipe(Effect.provide(layer()), Effect.scoped))

    it.live("a failure is shared by every concurrent caller and not cached", () =>
      Effect.gen(function*() {
        const [counter, lookup] = counting((n: number) =>
          Effect.zipRight(Effect.sleep("30 millis"), Effect.fail(new NotFound({ id: n })))
        )
        const f = cached(lookup, { name: "lookup" })
        const exits = yield* Effect.all(Array.from({ length: 100 }, () => Effect.exit(f(4))), {
          concurrency: "unbounded"
        })
        assert.strictEqual(counter.runs, 1)
        for (const exit of exits) assert.deepStrictEqual(exit, Exit.fail(new NotFound({ id: 4 })))
        const error = yield* Effect.flip(f(4))
        assert.instanceOf(error, NotFound)
        assert.strictEqual(counter.runs, 2, "not cached")
        assert.strictEqual((yield* f.info).entries, 0)
      }).pipe(Effect.provide(layer()), Effect.scoped))

    it.scoped("equal arguments built differently hit; functions don't collide; clear is per function", () =>
      Effect.gen(function*() {
        const [addRuns, add] = counting((n: number) => Effect.succeed(n))
        const f = cached(
          (a: number, options: { readonly scale: number; readonly tags: ReadonlySet<string> }) =>
            Effect.map(add(a), (x) => x * options.scale),
          { name: "scaled" }
        )
        const g = cached(
          (a: number, options: { readonly scale: number; readonly tags: ReadonlySet<string> }) =>
            Effect.succeed(-a * options.scale),
          { name: "negated" }
        )
        assert.strictEqual(yield* f(2, { scale: 10, tags: new Set(["a", "b"]) }), 20)
        const rebuilt = Object.fromEntries([["tags", new Set(["b", "a"])], ["scale", 5 * 2]]) as any
        assert.strictEqual(yield* f(2, rebuilt), 20)
        assert.strictEqual(yield* f(-0 + 2, { tags: new Set(["a", "b"]), scale: 10 }), 20)
        assert.strictEqual(addRuns.runs, 1)
        assert.strictEqual(yield* f(2, { scale: 11, tags: new Set(["a", "b"]) }), 22)
        assert.strictEqual(addRuns.runs, 2, "a different argument misses")
        assert.strictEqual(
          yield* g(2, { scale: 10, tags: new Set(["a", "b"]) }),
          -20,
          "same arguments, another function"
        )
        assert.deepStrictEqual([(yield* f.info).entries, (yield* g.info).entries], [2, 1])
        assert.strictEqual(yield* f.clear, 2)
        assert.deepStrictEqual([(yield* f.info).entries, (yield* g.info).entries], [0, 1])
        assert.strictEqual(yield* f(2, rebuilt), 20)
        assert.strictEqual(addRuns.runs, 3, "cleared, also from memory")
        assert.strictEqual(yield* g(2, rebuilt), -20)
        const cache = yield* Cache.Cache
        assert.deepStrictEqual((yield* cache.list()).map((e) => e.namespace).sort(), [
          "cached:negated",
          "cached:scaled"
        ])
      }).pipe(Effect.provide(layer())))

    it.scoped("cacheFailures stores a typed failure through failureSchema, with its own TTL", () =>
      Effect.gen(function*() {
        const [counter, lookup] = counting((n: number) =>
          n > 0 ? Effect.succeed(`user ${n}`) : Effect.fail(new NotFound({ id: n }))
        )
        const f = cached(lookup, {
          name: "user",
          cacheFailures: true,
          failureSchema: NotFound,
          ttl: "1 hour",
          failureTtl: "1 minute"
        })
        const first = yield* Effect.flip(f(-1))
        assert.strictEqual(counter.runs, 1)
        const replayed = yield* Effect.flip(f(-1))
        assert.instanceOf(replayed, NotFound)
        assert.deepStrictEqual(replayed, first)
        assert.strictEqual(counter.runs, 1, "the failure was served from the cache")
        const cache = yield* Cache.Cache
        const fresh = cached(lookup, { name: "user", cacheFailures: true, failureSchema: NotFound, memo: false })
        assert.instanceOf(yield* Effect.flip(fresh(-1)), NotFound, "decoded from the store, not memory")
        assert.strictEqual(counter.runs, 1)
        yield* TestClock.adjust("2 minutes")
        yield* Effect.flip(f(-1))
        assert.strictEqual(counter.runs, 2, "failureTtl")
        assert.strictEqual(yield* f(1), "user 1")
        yield* TestClock.adjust("30 minutes")
        assert.strictEqual(yield* f(1), "user 1")
        assert.strictEqual(counter.runs, 3)
        assert.strictEqual((yield* cache.stats()).entries, 2)
      }).pipe(Effect.provide(layer())))

    it.scoped("cacheFailures stores plain-data failures without a schema; class instances need one (warned)", () =>
      Effect.gen(function*() {
        const [plainRuns, plain] = counting((n: number) => Effect.fail({ code: "E_BUSY", n }))
        const f = cached(plain, { name: "plain", cacheFailures: true })
        assert.deepStrictEqual(yield* Effect.flip(f(1)), { code: "E_BUSY", n: 1 })
        assert.deepStrictEqual(yield* Effect.flip(f(1)), { code: "E_BUSY", n: 1 })
        assert.strictEqual(plainRuns.runs, 1)
        const [classRuns, tagged] = counting((n: number) => Effect.fail(new NotFound({ id: n })))
        const g = cached(tagged, { name: "tagged", cacheFailures: true })
        const [error, warnings] = yield* withWarnings(Effect.flip(g(1)))
        assert.instanceOf(error, NotFound, "the caller still gets its failure")
        assert.isTrue(warnings.some((w) => /typed failure not stored/.test(w)), warnings.join("\n"))
        yield* Effect.flip(g(1))
        assert.strictEqual(classRuns.runs, 2)
      }).pipe(Effect.provide(layer())))

    it.scoped("defects and interruptions are never stored", () =>
      Effect.gen(function*() {
        const [dieRuns, die] = counting((_: number) => Effect.die(new Error("boom")))
        const f = cached(die, { name: "die", cacheFailures: true })
        assert.isTrue(Exit.isFailure(yield* Effect.exit(f(1))))
        assert.isTrue(Exit.isFailure(yield* Effect.exit(f(1))))
        assert.strictEqual(dieRuns.runs, 2)
        const [hangRuns, hang] = counting((n: number) => Effect.as(Effect.sleep("1 hour"), n))
        const g = cached(hang, { name: "hang", cacheFailures: true })
        const fiber = yield* Effect.fork(g(1))
        yield* TestClock.adjust("1 minute")
        yield* Fiber.interrupt(fiber)
        assert.strictEqual((yield* g.info).entries, 0)
        const again = yield* Effect.fork(g(1))
        yield* TestClock.adjust("1 hour")
        assert.strictEqual(yield* Fiber.join(again), 1)
        assert.strictEqual(hangRuns.runs, 2)
      }).pipe(Effect.provide(layer())))

    it.scoped("waiters of an interrupted computation start over instead of failing", () =>
      Effect.gen(function*() {
        const [counter, hang] = counting((n: number) => Effect.as(Effect.sleep("1 hour"), n))
        const f = cached(hang, { name: "restart" })
        const leader = yield* Effect.fork(f(5))
        yield* TestClock.adjust("1 minute")
        const waiter = yield* Effect.fork(f(5))
        yield* TestClock.adjust("1 minute")
        yield* Fiber.interrupt(leader)
        yield* TestClock.adjust("2 hours")
        assert.strictEqual(yield* Fiber.join(waiter), 5)
        assert.strictEqual(counter.runs, 2)
      }).pipe(Effect.provide(layer())))

    it.scoped("condition stores only when true; a throwing condition stores nothing and warns", () =>
      Effect.gen(function*() {
        const [counter, half] = counting((n: number) => Effect.succeed(n / 2))
        const f = cached(half, { name: "half", condition: (x) => Number.isInteger(x) })
        assert.strictEqual(yield* f(4), 2)
        assert.strictEqual(yield* f(4), 2)
        assert.strictEqual(yield* f(3), 1.5)
        assert.strictEqual(yield* f(3), 1.5)
        assert.strictEqual(counter.runs, 3, "1.5 was not stored")
        const g = cached(half, {
          name: "thrower",
          condition: () => {
            throw new Error("bad condition")
          }
        })
        const [value, warnings] = yield* withWarnings(g(8))
        assert.strictEqual(value, 4)
        assert.isTrue(warnings.some((w) => /condition threw/.test(w)))
        assert.strictEqual((yield* g.info).entries, 0)
      }).pipe(Effect.provide(layer())))

    it.scoped("schema decodes hits; a hit that does not decode is removed and recomputed", () =>
      Effect.gen(function*() {
        const [counter, when] = counting((n: number) => Effect.succeed(new Date(Date.UTC(2024, 0, n))))
        const f = cached(when, { name: "when", schema: Schema.Date, memo: false })
        const first = yield* f(2)
        const hit = yield* f(2)
        assert.instanceOf(hit, Date)
        assert.strictEqual(hit.getTime(), first.getTime())
        assert.strictEqual(counter.runs, 1)
        // Same name and key, another schema: what is stored does not decode.
        const [otherRuns, other] = counting((_: number) => Effect.succeed(42))
        const g = cached(other, { name: "when", schema: Schema.Number })
        const [value, warnings] = yield* withWarnings(g(2))
        assert.strictEqual(value, 42)
        assert.strictEqual(otherRuns.runs, 1)
        assert.isTrue(warnings.some((w) => /could not be decoded/.test(w)), warnings.join("\n"))
        assert.strictEqual(yield* g(2), 42)
        assert.strictEqual(otherRuns.runs, 1)
      }).pipe(Effect.provide(layer())))

    it.scoped("the memo never serves a value the store no longer has", () =>
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const [counter, work] = counting((n: number) => Effect.succeed({ n }))
        const f = cached(work, { name: "memo" })
        yield* f(1)
        yield* f(1)
        yield* f(1)
        assert.strictEqual(counter.runs, 1)
        yield* cache.clear()
        yield* f(1)
        assert.strictEqual(counter.runs, 2, "a write through the cache invalidates the memo")
        yield* f(1)
        const key = (yield* cache.list())[0].key
        yield* cache.put(key as Cache.CacheKey, { n: 99 })
        assert.deepStrictEqual(yield* f(1), { n: 99 }, "an overwrite is seen")
        assert.strictEqual(counter.runs, 2)
      }).pipe(Effect.provide(layer())))

    it.scoped("key overrides the arguments; an anonymous function needs a name", () =>
      Effect.gen(function*() {
        const [counter, work] = counting((n: number) => Effect.succeed(n))
        const f = cached((n: number, _log: (s: string) => void) => work(n), { name: "keyed", key: (n) => ({ n }) })
        yield* f(1, () => {})
        yield* f(1, console.log)
        assert.strictEqual(counter.runs, 1)
        const anonymous = cached((n: number) => Effect.succeed(n))
        const error = yield* Effect.flip(anonymous(1))
        assert.strictEqual(error._tag, "ConfigError")
        assert.match(error.message, /cached\.name/)
        const unhashable = cached((fn: () => void) => Effect.succeed(typeof fn), { name: "unhashable" })
        assert.strictEqual((yield* Effect.flip(unhashable(() => {})))._tag, "KeyError")
        const badTtl = cached(work, { name: "bad", ttl: "soon" as any })
        assert.strictEqual((yield* Effect.flip(badTtl(1)))._tag, "ConfigError")
        assert.strictEqual(counter.runs, 1)
        assert.strictEqual((yield* (yield* Cache.Cache).stats()).entries, 1, "nothing stored by the failures")
      }).pipe(Effect.provide(layer())))

    it.scoped("data-last: pipe(f, cached(options)) keeps the signature", () =>
      Effect.gen(function*() {
        const g = pipe((a: number, b: string) => Effect.succeed(`${b}${a}`), cached({ name: "piped", ttl: null }))
        const value: string = yield* g(1, "x")
        assert.strictEqual(value, "x1")
        assert.strictEqual(g.namespace, "cached:piped")
        const cache = yield* Cache.Cache
        assert.isNull((yield* cache.list({ namespace: "cached:piped" }))[0].expiresAt)
      }).pipe(Effect.provide(layer())))
  })
}

describe("cached memo on SQLite", () => {
  /** Two caches on one directory: two connections, as two processes would have. */
  const twoCaches = Effect.gen(function*() {
    const directory = yield* tempDir
    const open = () =>
      Effect.map(
        Layer.build(Cache.layer({ directory })),
        (context) => <A, E>(self: Effect.Effect<A, E, Cache.Cache>) => Effect.provide(self, context)
      )
    return [yield* open(), yield* open()] as const
  })

  it.scoped("sees a write made through another connection at once (exact by default)", () =>
    Effect.gen(function*() {
      const [inA, inB] = yield* twoCaches
      let version = 1
      const f = cached((n: number) => Effect.sync(() => ({ n, version })), { name: "versioned" })
      assert.deepStrictEqual(yield* inA(f(1)), { n: 1, version: 1 })
      assert.deepStrictEqual(yield* inA(f(1)), { n: 1, version: 1 })
      version = 2
      yield* inB(f.clear)
      assert.deepStrictEqual(yield* inA(f(1)), { n: 1, version: 2 }, "cleared through B: A recomputes")
      const info = yield* inA(f.info)
      assert.deepStrictEqual([info.hits, info.misses], [1, 2])
    }))

  it.scoped("memoRecheck serves memoised values for up to its interval, then sees the write", () =>
    Effect.gen(function*() {
      const [inA, inB] = yield* twoCaches
      let version = 1
      const f = cached((n: number) => Effect.sync(() => ({ n, version })), {
        name: "relaxed",
        memoRecheck: "300 millis"
      })
      yield* inA(f(1))
      yield* inA(f(1))
      version = 2
      yield* inB(f.clear)
      assert.deepStrictEqual(yield* inA(f(1)), { n: 1, version: 1 }, "stale within the interval, as documented")
      yield* Effect.sleep("350 millis")
      assert.deepStrictEqual(yield* inA(f(1)), { n: 1, version: 2 })
      yield* inA(f.clear)
      version = 3
      assert.deepStrictEqual(yield* inA(f(1)), { n: 1, version: 3 }, "its own clear is seen at once")
    }).pipe(Effect.withClock(Clock.make())))
})

describe("cached across processes", () => {
  const lines = (file: string) =>
    fs.existsSync(file) ? fs.readFileSync(file, "utf8").trim().split("\n").filter((l) => l !== "") : []
  const until = (condition: () => boolean, what: string, timeout = 30_000) =>
    Effect.gen(function*() {
      const start = Date.now()
      while (!condition()) {
        if (Date.now() - start > timeout) return yield* Effect.die(new Error(`timed out waiting for ${what}`))
        yield* Effect.sleep("20 millis")
      }
    })

  it.live("4 processes call the same memoised function at once: it runs once", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const countFile = path.join(directory, "runs.txt")
      // Open the cache (and its layout) once, so the children race on the call, not on creating it.
      yield* Effect.provide(Effect.flatMap(Cache.Cache, (c) => c.stats()), Cache.layer({ directory }))
      const startAt = String(Date.now() + 4_000)
      const results = yield* Effect.promise(() =>
        Promise.all(
          [0, 1, 2, 3].map(() => runChild("test/support/cachedWorker.ts", ["once", directory, countFile, startAt]))
        )
      )
      for (const r of results) {
        assert.strictEqual(r.code, 0, r.stderr)
        assert.deepStrictEqual(JSON.parse(r.stdout.trim()), { answer: 42 })
      }
      assert.strictEqual(lines(countFile).length, 1, lines(countFile).join("\n"))
    }).pipe(Effect.scoped), 60_000)

  it.live("a killed lease holder: another process computes once its lease expires", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const countFile = path.join(directory, "runs.txt")
      yield* Effect.provide(Effect.flatMap(Cache.Cache, (c) => c.stats()), Cache.layer({ directory }))
      const holder = startChild("test/support/cachedWorker.ts", ["hang", directory, countFile, "1000"])
      yield* until(() => lines(countFile).length === 1, "the holder to start computing")
      const waiter = runChild("test/support/cachedWorker.ts", ["wait", directory, countFile, "1000"])
      yield* until(() => fs.existsSync(path.join(directory, "calling")), "the second process to call")
      // Longer than the lease: the live holder keeps renewing it, so the waiter keeps waiting.
      yield* Effect.sleep("2500 millis")
      assert.strictEqual(lines(countFile).length, 1, "the waiter did not compute while the holder lived")
      holder.child.kill("SIGKILL")
      const killed = yield* Effect.promise(() => holder.done)
      assert.strictEqual(killed.signal, "SIGKILL")
      const killedAt = Date.now()
      const result = yield* Effect.promise(() => waiter)
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(JSON.parse(result.stdout.trim()), { answer: 42 })
      assert.deepStrictEqual(lines(countFile).map((l) => l.split(" ")[1]), ["hang", "wait"])
      assert.isBelow(Date.now() - killedAt, 15_000)
    }).pipe(Effect.scoped), 60_000)
})

describe("memoize (Promise)", () => {
  it.live("cache.memoize: hits, single-flight, rejections not stored, info and clear", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const cache = cacheness({ directory })
      yield* Effect.addFinalizer(() => Effect.promise(() => cache.close()))
      let runs = 0
      const square = cache.memoize(async (n: number) => {
        runs++
        await new Promise((r) => setTimeout(r, 20))
        if (n < 0) throw new RangeError("negative")
        return n ** 2
      }, { name: "square", ttl: "24 hours" })
      const values = yield* Effect.promise(() => Promise.all(Array.from({ length: 100 }, () => square(4))))
      assert.deepStrictEqual(new Set(values), new Set([16]))
      assert.strictEqual(runs, 1)
      assert.strictEqual(yield* Effect.promise(() => square(4)), 16)
      assert.strictEqual(runs, 1)
      const rejections = yield* Effect.promise(() => Promise.allSettled([square(-1), square(-1)]))
      for (const r of rejections) {
        assert.strictEqual(r.status, "rejected")
        assert.instanceOf((r as PromiseRejectedResult).reason, RangeError)
      }
      assert.strictEqual(runs, 2, "one computation for both concurrent callers")
      yield* Effect.promise(() => square(-1).catch(() => undefined))
      assert.strictEqual(runs, 3, "a rejection is not stored")
      assert.deepStrictEqual(yield* Effect.promise(() => square.info()), { hits: 101, misses: 3, entries: 1 })
      assert.strictEqual(yield* Effect.promise(() => square.clear()), 1)
      assert.strictEqual(yield* Effect.promise(() => square(4)), 16)
      assert.strictEqual(runs, 4)
      const anonymous = cache.memoize(async (n: number) => n ** 3)
      const error = yield* Effect.promise(() => anonymous(2).catch((e) => e))
      assert.strictEqual(error._tag, "ConfigError")
      const cubeOf = async (n: number) => n ** 3
      const cube = cache.memoize(cubeOf)
      assert.strictEqual(yield* Effect.promise(() => cube(2)), 8, "the name defaults to the function's")
      assert.strictEqual(cube.namespace, "cached:cubeOf")
      const entries = yield* Effect.promise(() => cache.list())
      assert.deepStrictEqual(entries.map((e) => e.namespace).sort(), ["cached:cubeOf", "cached:square"])
    }).pipe(Effect.scoped))

  it.live("cacheFailures with plain-data rejections; a stored value survives reopening", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      let runs = 0
      const open = () => {
        const cache = cacheness({ directory })
        const fetchUser = cache.memoize(async (id: number) => {
          runs++
          if (id === 0) throw { status: 404 }
          return { id, name: `user ${id}` }
        }, { name: "fetchUser", cacheFailures: true })
        return [cache, fetchUser] as const
      }
      const [first, fetchFirst] = open()
      assert.deepStrictEqual(yield* Effect.promise(() => fetchFirst(1)), { id: 1, name: "user 1" })
      assert.deepStrictEqual(yield* Effect.promise(() => fetchFirst(0).catch((e) => e)), { status: 404 })
      yield* Effect.promise(() => first.close())
      const [second, fetchSecond] = open()
      assert.deepStrictEqual(yield* Effect.promise(() => fetchSecond(1)), { id: 1, name: "user 1" })
      assert.deepStrictEqual(yield* Effect.promise(() => fetchSecond(0).catch((e) => e)), { status: 404 })
      assert.strictEqual(runs, 2)
      yield* Effect.promise(() => second.close())
    }).pipe(Effect.scoped))

  it.live("@memoized decorates methods; memoize uses the default cache lazily", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const cache = cacheness({ directory })
      yield* Effect.addFinalizer(() => Effect.promise(() => cache.close()))
      let runs = 0
      class Pricing {
        constructor(readonly rate: number) {}
        @memoized({ cache, ttl: "1 hour" })
        async price(amount: number): Promise<number> {
          runs++
          return amount * this.rate
        }
      }
      const pricing = new Pricing(2)
      assert.strictEqual(yield* Effect.promise(() => pricing.price(10)), 20, "runs with its receiver")
      assert.strictEqual(yield* Effect.promise(() => new Pricing(2).price(10)), 20)
      assert.strictEqual(runs, 1)
      const method = Pricing.prototype.price as unknown as Memoized<[number], number>
      assert.deepStrictEqual(yield* Effect.promise(() => method.info()), { hits: 1, misses: 1, entries: 1 })
      assert.strictEqual(method.namespace, "cached:price")
      assert.strictEqual(yield* Effect.promise(() => method.clear()), 1)

      // The default cache opens on the first call, in CACHENESS_DIR.
      const defaultDir = path.join(directory, "default")
      const previous = process.env.CACHENESS_DIR
      process.env.CACHENESS_DIR = defaultDir
      try {
        const triple = memoize(async (n: number) => n * 3, { name: "triple" })
        assert.isFalse(fs.existsSync(defaultDir), "not opened by the declaration")
        assert.strictEqual(yield* Effect.promise(() => triple(3)), 9)
        assert.strictEqual(yield* Effect.promise(() => triple(3)), 9)
        assert.deepStrictEqual(yield* Effect.promise(() => triple.info()), { hits: 1, misses: 1, entries: 1 })
        assert.isTrue(fs.existsSync(path.join(defaultDir, "cacheness.db")))
      } finally {
        if (previous === undefined) delete process.env.CACHENESS_DIR
        else process.env.CACHENESS_DIR = previous
      }
    }).pipe(Effect.scoped))
})

describe("cached stores values in their own formats", () => {
  it.scoped("a typed array result is stored as an ndarray (not wrapped), and a failure still round-trips", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.provide(
        Effect.gen(function*() {
          const features = cached(
            (n: number) => Effect.succeed(Float64Array.from({ length: n }, (_, i) => Math.sin(i))),
            { name: "features" }
          )
          const first = yield* features(1_000)
          const again = yield* features(1_000)
          assert.deepStrictEqual(Array.from(again), Array.from(first))
          const cache = yield* Cache.Cache
          const [entry] = yield* cache.list({ namespace: "cached:features" })
          assert.strictEqual(entry.format, "ndarray")
          const failing = cached((n: number) => Effect.fail({ code: n }), { name: "failing", cacheFailures: true })
          assert.deepStrictEqual(yield* Effect.flip(failing(7)), { code: 7 })
          assert.deepStrictEqual(yield* Effect.flip(failing(7)), { code: 7 })
          assert.strictEqual((yield* failing.info).entries, 1)
        }),
        Cache.layer({ directory })
      )
    }))
})
