import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { randomBytes } from "node:crypto"
import { Cache } from "../cache/service.js"
import type { CacheConfig } from "../schema/CacheConfig.js"
import { CacheEntry } from "../schema/CacheEntry.js"

/**
 * A string LZ4 cannot shrink much, so its stored size is predictable.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const incompressible = (chars: number): string =>
  randomBytes(Math.ceil(chars / 2)).toString("hex").slice(0, chars)

/** Housekeeping out of the way, so a test observes only its own operations. */
const manualCleanup = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

/**
 * The engine policies the cache suite sets for some tests (TTL default, size limit, housekeeping).
 *
 * @since 0.1.0
 * @category models
 */
export type CacheSuiteOptions = Pick<CacheConfig, "defaultTtl" | "maxSize" | "cleanupOnOpen" | "cleanupInterval">

/**
 * The contract every cache layer passes; each test builds the layer afresh (an empty cache). Given a
 * function of the engine options, the tests of TTL defaults, size limits and housekeeping run too;
 * given a plain layer (default options), they are skipped.
 *
 * @since 0.1.0
 * @category suites
 */
export const cacheSuite = (
  name: string,
  layer: Layer.Layer<Cache, unknown> | ((options: CacheSuiteOptions) => Layer.Layer<Cache, unknown>)
): void => {
  describe(`Cache contract: ${name}`, () => {
    const make = (config?: CacheSuiteOptions) => typeof layer === "function" ? layer(config ?? {}) : layer
    const run = <A, E>(self: Effect.Effect<A, E, Cache>, config?: CacheSuiteOptions) =>
      Effect.provide(self, make(config))
    // These tests set options a fixed layer cannot take.
    const configurable = typeof layer === "function"
    const itEffect = configurable ? it.effect : it.effect.skip
    const itScoped = configurable ? it.scoped : it.scoped.skip
    const params = { model: "xgboost", dataset: "customer_data", version: "1.0" }

    it.scoped("put then get round-trips values; name order is irrelevant", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const value = { results: [1, 2, 3], when: new Date(5), big: 10n, tags: new Set(["a"]), m: new Map([[1, "x"]]) }
        const key = yield* cache.put(params, value)
        assert.match(key, /^[0-9a-f]{16}$/)
        assert.strictEqual(key, yield* cache.key({ version: "1.0", dataset: "customer_data", model: "xgboost" }))
        assert.deepStrictEqual(
          yield* cache.get({ version: "1.0", model: "xgboost", dataset: "customer_data" }),
          Option.some(value)
        )
        assert.deepStrictEqual(yield* cache.get(key), Option.some(value))
        assert.isTrue(Option.isNone(yield* cache.get({ ...params, version: "2.0" })))
      })))

    it.scoped("a stored null or undefined is a hit", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        yield* cache.put({ k: "null" }, null)
        yield* cache.put({ k: "undefined" }, undefined)
        assert.deepStrictEqual(yield* cache.get({ k: "null" }), Option.some(null))
        assert.deepStrictEqual(yield* cache.get({ k: "undefined" }), Option.some(undefined))
        assert.isTrue(yield* cache.has({ k: "undefined" }))
      })))

    it.scoped("bytes and large values round-trip; overwrite replaces", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const bytes = new Uint8Array(100_000).map((_, i) => (i * 7) % 251)
        yield* cache.put({ k: 1 }, bytes)
        const got = Option.getOrThrow(yield* cache.get({ k: 1 })) as Uint8Array
        assert.deepStrictEqual(Array.from(got), Array.from(bytes))
        const big = { text: "x".repeat(50_000), n: Array.from({ length: 5_000 }, (_, i) => i) }
        yield* cache.put({ k: 1 }, big)
        assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some(big))
        yield* cache.put({ k: 1 }, "small")
        assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some("small"))
        assert.strictEqual((yield* cache.stats()).entries, 1)
      })))

    itEffect(
      "TTL: entries expire through Clock; null never expires; default applies",
      () =>
        run(
          Effect.gen(function*() {
            const cache = yield* Cache
            yield* cache.put({ k: "short" }, 1, { ttl: "1 hour" })
            yield* cache.put({ k: "never" }, 2, { ttl: null })
            yield* cache.put({ k: "default" }, 3)
            yield* TestClock.adjust("59 minutes")
            assert.isTrue(yield* cache.has({ k: "short" }))
            yield* TestClock.adjust("2 minutes")
            assert.isTrue(Option.isNone(yield* cache.get({ k: "short" })))
            assert.isFalse(yield* cache.has({ k: "short" }))
            assert.isTrue(Option.isNone(yield* cache.getWithMetadata({ k: "short" })))
            yield* TestClock.adjust("1 hour")
            assert.isTrue(yield* cache.has({ k: "default" }))
            yield* TestClock.adjust("1 hour")
            assert.isFalse(yield* cache.has({ k: "default" }))
            yield* TestClock.adjust("1000 days")
            assert.deepStrictEqual(yield* cache.get({ k: "never" }), Option.some(2))
          }),
          { defaultTtl: "3 hours", ...manualCleanup }
        )
    )

    itEffect("touch renews a live entry; cleanupExpired removes and counts", () =>
      run(
        Effect.gen(function*() {
          const cache = yield* Cache
          yield* cache.put({ k: 1 }, "a", { ttl: "1 hour" })
          yield* cache.put({ k: 2 }, incompressible(40_000), { ttl: "1 hour" })
          yield* cache.put({ k: 3 }, "c", { ttl: "10 hours" })
          yield* TestClock.adjust("50 minutes")
          assert.isTrue(yield* cache.touch({ k: 1 }, "2 hours"))
          assert.isFalse(yield* cache.touch({ k: 99 }))
          yield* TestClock.adjust("20 minutes")
          assert.isFalse(yield* cache.touch({ k: 2 }))
          assert.strictEqual(yield* cache.cleanupExpired(), 1)
          assert.strictEqual((yield* cache.stats()).entries, 2)
          assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some("a"))
          const report = yield* cache.verify()
          assert.deepStrictEqual(report.orphans, [])
        }),
        manualCleanup
      ))

    itEffect(
      "grace: fresh until ttl, stale until ttl + grace, gone after; get misses, allowStale hits, has false, cleanupExpired counts only past-grace entries",
      () =>
        run(
          Effect.gen(function*() {
            const cache = yield* Cache
            yield* cache.put({ k: "graced" }, "g", { ttl: "1 hour", grace: "1 hour" })
            yield* cache.put({ k: "big" }, incompressible(40_000), { ttl: "1 hour", grace: "2 hours" })
            yield* cache.put({ k: "plain" }, "p", { ttl: "1 hour" })
            const gracedKey = yield* cache.key({ k: "graced" })
            const listed = (yield* cache.list()).find((e) => e.key === gracedKey)!
            assert.strictEqual(listed.staleUntil! - listed.expiresAt!, 3_600_000, "staleUntil = expiresAt + grace")
            const withMeta = Option.getOrThrow(yield* cache.getWithMetadata({ k: "graced" }, { allowStale: true }))
            assert.isFalse(withMeta.stale)
            yield* TestClock.adjust("90 minutes")
            assert.isTrue(Option.isNone(yield* cache.get({ k: "graced" })), "a stale entry is a miss for get")
            assert.isFalse(yield* cache.has({ k: "graced" }), "has: fresh only")
            assert.isTrue(Option.isNone(yield* cache.getWithMetadata({ k: "graced" })))
            assert.deepStrictEqual(yield* cache.get({ k: "graced" }, { allowStale: true }), Option.some("g"))
            assert.strictEqual(
              (yield* cache.get({ k: "big" }, { allowStale: true })).pipe(
                Option.getOrThrow,
                (v) => (v as string).length
              ),
              40_000,
              "a stale blob entry is served too"
            )
            const stale = Option.getOrThrow(yield* cache.getWithMetadata({ k: "graced" }, { allowStale: true }))
            assert.strictEqual(stale.value, "g")
            assert.isTrue(stale.stale)
            assert.isTrue(Option.isNone(yield* cache.get({ k: "plain" }, { allowStale: true })), "no grace: gone")
            assert.strictEqual(yield* cache.cleanupExpired(), 1, "only the entry past its grace")
            assert.strictEqual((yield* cache.stats()).entries, 2)
            yield* TestClock.adjust("31 minutes")
            assert.isTrue(
              Option.isNone(yield* cache.get({ k: "graced" }, { allowStale: true })),
              "gone after the grace"
            )
            assert.strictEqual(yield* cache.cleanupExpired(), 1)
            yield* TestClock.adjust("1 hour")
            assert.strictEqual(yield* cache.cleanupExpired(), 1)
            assert.strictEqual((yield* cache.stats()).entries, 0)
            // Bad grace: a typed error, nothing stored.
            for (const grace of [null, -1, "soon", Infinity]) {
              const exit = yield* Effect.exit(cache.put({ k: "bad" }, 1, { ttl: "1 hour", grace: grace as any }))
              assert.isTrue(Exit.isFailure(exit), String(grace))
            }
            const badGet = yield* Effect.exit(cache.get({ k: "bad" }, { allowStale: "yes" as any }))
            assert.isTrue(Exit.isFailure(badGet))
            assert.strictEqual((yield* cache.stats()).entries, 0)
          }),
          manualCleanup
        )
    )

    itEffect("touch renews a graced entry with its grace", () =>
      run(
        Effect.gen(function*() {
          const cache = yield* Cache
          yield* cache.put({ k: "t" }, "t", { ttl: "1 hour", grace: "30 minutes" })
          yield* TestClock.adjust("50 minutes")
          assert.isTrue(yield* cache.touch({ k: "t" }, "1 hour"))
          yield* TestClock.adjust("80 minutes")
          assert.isTrue(Option.isNone(yield* cache.get({ k: "t" })))
          assert.deepStrictEqual(yield* cache.get({ k: "t" }, { allowStale: true }), Option.some("t"))
          yield* TestClock.adjust("11 minutes")
          assert.isTrue(Option.isNone(yield* cache.get({ k: "t" }, { allowStale: true })))
        }),
        manualCleanup
      ))

    itScoped("invalidate and invalidateWhere by namespace, params, time and expiry", () =>
      run(
        Effect.gen(function*() {
          const cache = yield* Cache
          yield* cache.put({ model: "a", v: 1 }, 1, { namespace: "ns1" })
          yield* cache.put({ model: "a", v: 2 }, 2, { namespace: "ns2" })
          yield* cache.put({ model: "b", v: 1 }, 3, { namespace: "ns2" })
          yield* cache.put({ model: "c", v: 1 }, 4, { namespace: "ns2", ttl: 0 })
          // The namespace is part of the identity: the entry is not found without it.
          assert.isFalse(yield* cache.invalidate({ model: "b", v: 1 }))
          assert.isTrue(yield* cache.invalidate({ model: "b", v: 1 }, { namespace: "ns2" }))
          assert.isFalse(yield* cache.invalidate({ model: "b", v: 1 }, { namespace: "ns2" }))
          assert.strictEqual(yield* cache.invalidateWhere({ expiredOnly: true }), 1)
          assert.strictEqual(yield* cache.invalidateWhere({ params: { model: "a" }, namespace: "ns2" }), 1)
          assert.strictEqual(yield* cache.invalidateWhere({ params: { model: "zzz" } }), 0)
          assert.strictEqual((yield* cache.stats()).entries, 1)
          assert.strictEqual(yield* cache.invalidateWhere({ createdBefore: new Date(8.64e15) }), 1)
          assert.strictEqual((yield* cache.stats()).entries, 0)
        }),
        manualCleanup
      ))

    it.scoped("clear removes everything and returns the count", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        for (let i = 0; i < 5; i++) yield* cache.put({ i }, i % 2 === 0 ? incompressible(30_000) : i)
        assert.strictEqual(yield* cache.clear(), 5)
        assert.strictEqual((yield* cache.stats()).entries, 0)
        assert.strictEqual((yield* cache.stats()).totalBytes, 0)
        assert.strictEqual((yield* cache.verify()).orphans.length, 0)
      })))

    it.effect("list returns entries with metadata, ordered, paged and filtered", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        for (let i = 0; i < 4; i++) {
          yield* cache.put({ i }, "v".repeat(i * 10), {
            namespace: i < 2 ? "low" : "high",
            description: `item ${i}`,
            metadata: { i }
          })
          yield* TestClock.adjust("1 second")
        }
        const all = yield* cache.list()
        assert.deepStrictEqual(all.map((e) => e.description), ["item 0", "item 1", "item 2", "item 3"])
        const e = all[1]
        assert.strictEqual(e.namespace, "low")
        assert.deepStrictEqual(e.params, { i: 1 })
        assert.deepStrictEqual(e.metadata, { i: 1 })
        assert.strictEqual(e.format, "json")
        assert.strictEqual(e.codec, "none")
        assert.strictEqual(e.createdAt, 1_000)
        assert.strictEqual(e.expiresAt, 1_000 + 24 * 3600 * 1000)
        const newest = yield* cache.list({ orderBy: "createdAt", descending: true, limit: 1 })
        assert.deepStrictEqual(newest.map((x) => x.description), ["item 3"])
        const high = yield* cache.list({ namespace: "high", offset: 1 })
        assert.deepStrictEqual(high.map((x) => x.description), ["item 3"])
      })))

    it.scoped("listed entries are plain data: own fields, epoch-millisecond times, parsed params and metadata", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const key = yield* cache.put({ user: 7, tags: ["a", "b"] }, "v", {
          description: "quote \" and \u001f",
          metadata: { run: { lr: 0.1 } }
        })
        yield* cache.put({ user: 8 }, "w", { ttl: null, namespace: "n\u00e9 \ud83d\ude00" })
        const entries = yield* cache.list({ orderBy: "key" })
        const entry = entries.find((e) => e.key === key)!
        assert.strictEqual(Object.getPrototypeOf(entry), Object.prototype)
        assert.deepStrictEqual(Object.keys(entry).sort(), Object.keys(CacheEntry.fields).sort())
        assert.isTrue(Schema.is(CacheEntry)(entry))
        assert.isTrue(Number.isSafeInteger(entry.createdAt))
        assert.strictEqual(entry.accessedAt, entry.createdAt)
        assert.strictEqual(entry.expiresAt, entry.createdAt + 24 * 3600 * 1000)
        assert.deepStrictEqual(entry.params, { user: 7, tags: ["a", "b"] })
        assert.deepStrictEqual(entry.metadata, { run: { lr: 0.1 } })
        assert.strictEqual(entry.description, "quote \" and \u001f")
        assert.deepStrictEqual({ ...entry }, entry)
        assert.deepStrictEqual(Schema.decodeUnknownSync(CacheEntry)(JSON.parse(JSON.stringify(entry))), entry)
        assert.deepStrictEqual(structuredClone(entry), entry)
        const other = entries.find((e) => e.key !== key)!
        assert.strictEqual(other.namespace, "n\u00e9 \ud83d\ude00")
        assert.isNull(other.expiresAt)
        assert.isNull(other.metadata)
        assert.isNull(other.description)
        // Each listing builds its own objects: changing a returned entry changes no other listing.
        const again = yield* cache.list({ orderBy: "key" })
        assert.deepStrictEqual(again, entries)
        assert.notStrictEqual(again[0], entries[0])
        assert.notStrictEqual(again[0].params, entries[0].params)
      })))

    it.scoped("stats count hits and misses of get only; getWithMetadata returns the entry", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        yield* cache.put(params, 42, { description: "answer" })
        yield* cache.get(params)
        yield* cache.get(params)
        yield* cache.get({ other: 1 })
        yield* cache.has(params)
        yield* cache.has({ other: 1 })
        yield* cache.touch(params)
        const hit = Option.getOrThrow(yield* cache.getWithMetadata(params))
        assert.strictEqual(hit.value, 42)
        assert.strictEqual(hit.entry.description, "answer")
        const stats = yield* cache.stats()
        assert.strictEqual(stats.hits, 3)
        assert.strictEqual(stats.misses, 1)
        assert.strictEqual(stats.hitRate, 0.75)
        assert.strictEqual(stats.entries, 1)
        assert.isTrue(stats.totalBytes > 0)
        const [entry] = yield* cache.list()
        assert.strictEqual(entry.hits, 2 + 1)
      })))

    it.scoped("schema: put validates, get decodes; a mismatch on get is a miss and removes the entry", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const Scores = Schema.Struct({ model: Schema.String, scores: Schema.Array(Schema.Number), at: Schema.Date })
        const scores = { model: "m", scores: [0.5, 0.7], at: new Date(1_000) }
        yield* cache.put({ k: 1 }, scores, { schema: Scores })
        assert.deepStrictEqual(yield* cache.get({ k: 1 }, { schema: Scores }), Option.some(scores))
        const bad = yield* Effect.flip(cache.put({ k: 2 }, { model: 1 } as any, { schema: Scores }))
        assert.strictEqual(bad._tag, "CodecError")
        assert.isFalse(yield* cache.has({ k: 2 }))
        const Other = Schema.Struct({ name: Schema.String })
        assert.isTrue(Option.isNone(yield* cache.get({ k: 1 }, { schema: Other })))
        assert.isFalse(yield* cache.has({ k: 1 }))
      })))

    it.scoped("bad input is a typed error and changes nothing", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        yield* cache.put({ k: "keep" }, 1)
        const before = yield* cache.stats()
        const e1 = yield* Effect.flip(cache.put({ model: { fit: () => 1 } }, 1))
        assert.strictEqual(e1._tag, "KeyError")
        assert.match(e1.message, /params\.model\.fit/)
        const e2 = yield* Effect.flip(cache.put({ k: "fn" }, { f: () => 1 }))
        assert.strictEqual(e2._tag, "CodecError")
        const e3 = yield* Effect.flip(cache.get("not-a-key" as any))
        assert.strictEqual(e3._tag, "KeyError")
        const e4 = yield* Effect.flip(cache.put({ k: "ttl" }, 1, { ttl: "soon" as any }))
        assert.strictEqual(e4._tag, "ConfigError")
        const e5 = yield* Effect.flip(cache.put({ k: "meta" }, 1, { metadata: { n: 1n } }))
        assert.strictEqual(e5._tag, "ConfigError")
        const after = yield* cache.stats()
        assert.strictEqual(after.entries, before.entries)
        assert.strictEqual(after.totalBytes, before.totalBytes)
        assert.isFalse(yield* cache.has({ k: "fn" }))
      })))

    itEffect("maxSize evicts least-recently-used entries down to 80%", () =>
      run(
        Effect.gen(function*() {
          const cache = yield* Cache
          for (let i = 0; i < 7; i++) {
            yield* cache.put({ i }, incompressible(1_000))
            yield* TestClock.adjust("1 second")
          }
          assert.strictEqual((yield* cache.stats()).entries, 7)
          // reading the two oldest makes them the most recently used
          yield* cache.get({ i: 0 })
          yield* cache.get({ i: 1 })
          yield* TestClock.adjust("1 second")
          yield* cache.put({ i: 7 }, incompressible(1_000))
          const after = yield* cache.stats()
          assert.isTrue(after.totalBytes <= 8_000 * 0.8, `total ${after.totalBytes}`)
          for (const i of [0, 1, 4, 5, 6, 7]) assert.isTrue(yield* cache.has({ i }), `entry ${i} kept`)
          for (const i of [2, 3]) assert.isFalse(yield* cache.has({ i }), `entry ${i} evicted`)
        }),
        { maxSize: 8_000, ...manualCleanup }
      ))

    itEffect(
      "prune evicts least-recently-used entries down to a target; a bad target changes nothing",
      () =>
        run(
          Effect.gen(function*() {
            const cache = yield* Cache
            for (let i = 0; i < 6; i++) {
              yield* cache.put({ i }, incompressible(20_000))
              yield* TestClock.adjust("1 second")
            }
            yield* cache.get({ i: 0 })
            const before = yield* cache.stats()
            const error = yield* Effect.flip(cache.prune("a little"))
            assert.strictEqual(error._tag, "ConfigError")
            assert.strictEqual((yield* cache.stats()).totalBytes, before.totalBytes)
            assert.deepStrictEqual(yield* cache.prune(before.totalBytes), { entries: 0, bytes: 0 })
            const progress: Array<number> = []
            const result = yield* cache.prune("50 KiB", { onProgress: (p) => progress.push(p.done) })
            assert.strictEqual(result.entries, 4)
            const after = yield* cache.stats()
            assert.strictEqual(after.totalBytes, before.totalBytes - result.bytes)
            assert.isTrue(after.totalBytes <= 50 * 1024, `total ${after.totalBytes}`)
            assert.deepStrictEqual(progress, [4])
            for (const i of [0, 5]) assert.isTrue(yield* cache.has({ i }), `entry ${i} kept`)
            assert.deepStrictEqual((yield* cache.verify()).orphans, [])
          }),
          manualCleanup
        )
    )

    it.scoped("getMany answers in order: inline, blob and missing entries; counted as gets", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const big = incompressible(40_000)
        yield* cache.put({ k: "small" }, { n: 1 })
        yield* cache.put({ k: "big" }, big)
        yield* cache.put({ k: "null" }, null)
        const before = yield* cache.stats()
        const found = yield* cache.getMany([{ k: "big" }, { k: "absent" }, { k: "small" }, { k: "null" }, { k: "big" }])
        assert.deepStrictEqual(found, [
          Option.some(big),
          Option.none(),
          Option.some({ n: 1 }),
          Option.some(null),
          Option.some(big)
        ])
        const after = yield* cache.stats()
        assert.deepStrictEqual([after.hits - before.hits, after.misses - before.misses], [4, 1])
        assert.deepStrictEqual(yield* cache.getMany([]), [])
        const typed = yield* cache.getMany([{ k: "small" }, { k: "big" }], {
          schema: Schema.Struct({ n: Schema.Number })
        })
        // The blob holds a string, not `{ n }`: a miss (and removed), as `get` with that schema.
        assert.deepStrictEqual(typed, [Option.some({ n: 1 }), Option.none()])
        const e = yield* Effect.flip(cache.getMany([{ k: "small" }, "not-a-key" as any]))
        assert.strictEqual(e._tag, "KeyError")
      })))

    it.scoped("putMany stores every entry and returns the keys in order; invalidateMany removes them", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const big = incompressible(40_000)
        const keys = yield* cache.putMany([
          [{ i: 1 }, "one", { description: "first", tags: ["batch"] }],
          [{ i: 2 }, big],
          [{ i: 3 }, [3], { namespace: "ns" }],
          [{ i: 1 }, "one again"]
        ])
        assert.deepStrictEqual(keys, [
          yield* cache.key({ i: 1 }),
          yield* cache.key({ i: 2 }),
          yield* cache.key({ i: 3 }, { namespace: "ns" }),
          yield* cache.key({ i: 1 })
        ])
        // A key given twice keeps its last value; the namespaced entry is its own identity.
        assert.deepStrictEqual(yield* cache.getMany([{ i: 1 }, { i: 2 }, keys[2], { i: 3 }]), [
          Option.some("one again"),
          Option.some(big),
          Option.some([3]),
          Option.none()
        ])
        assert.deepStrictEqual(yield* cache.getMany([{ i: 3 }], { namespace: "ns" }), [Option.some([3])])
        assert.strictEqual((yield* cache.stats()).entries, 3)
        assert.strictEqual(yield* cache.invalidateMany([{ i: 1 }, { i: 2 }, { i: 9 }, { i: 1 }]), 2)
        assert.deepStrictEqual((yield* cache.list()).map((e) => e.namespace), ["ns"])
        assert.deepStrictEqual(yield* cache.putMany([]), [])
        assert.strictEqual(yield* cache.invalidateMany([]), 0)
      })))

    it.scoped("putMany with a bad entry fails with its typed error and stores none", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        yield* cache.put({ k: "keep" }, "old")
        const before = yield* cache.stats()
        const bad = [
          [[{ k: "keep" }, "new"], [{ k: "a" }, incompressible(40_000)], [{ k: "fn" }, { f: () => 1 }]],
          [[{ k: "a" }, 1], [{ k: "b" }, 2, { tags: [""] }]],
          [[{ k: "a" }, 1], [{ k: "b" }, 2, { ttl: "soon" }]],
          [[{ k: "a" }, 1], [{ model: { fit: () => 1 } }, 2]],
          [[{ k: "a" }, 1], "not a tuple"]
        ] as const
        const tags: Array<string> = []
        for (const entries of bad) {
          const error = yield* Effect.flip(cache.putMany(entries as any))
          tags.push(error._tag)
        }
        assert.deepStrictEqual(tags, ["CodecError", "ConfigError", "ConfigError", "KeyError", "ConfigError"])
        const notIterable = yield* Effect.flip(cache.putMany(42 as any))
        assert.strictEqual(notIterable._tag, "ConfigError")
        const after = yield* cache.stats()
        assert.deepStrictEqual([after.entries, after.totalBytes], [before.entries, before.totalBytes])
        assert.deepStrictEqual(yield* cache.get({ k: "keep" }), Option.some("old"))
        assert.isFalse(yield* cache.has({ k: "a" }))
      })))

    it.scoped("tags: put with tags, entry.tags, list({ tag }), invalidateTags; bad tags change nothing", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        yield* cache.put({ u: 1 }, "a", { tags: ["user:1", "users"] })
        yield* cache.put({ u: 2 }, incompressible(40_000), { tags: ["user:2", "users"] })
        yield* cache.put({ u: 3 }, "c", { tags: ["user:3"] })
        yield* cache.put({ u: 4 }, "d")
        const hit = Option.getOrThrow(yield* cache.getWithMetadata({ u: 1 }))
        assert.deepStrictEqual(hit.entry.tags, ["user:1", "users"])
        assert.deepStrictEqual((yield* cache.list({ tag: "users" })).map((e) => e.tags).sort(), [
          ["user:1", "users"],
          ["user:2", "users"]
        ])
        assert.deepStrictEqual((yield* cache.list({ orderBy: "key" })).length, 4)
        for (const entry of yield* cache.list()) Schema.decodeUnknownSync(CacheEntry)(entry)
        for (const input of [[""], "users", [1], undefined, null]) {
          const error = yield* Effect.flip(cache.invalidateTags(input as any))
          assert.strictEqual(error._tag, "ConfigError")
        }
        const e = yield* Effect.flip(cache.put({ u: 5 }, "e", { tags: ["ok", 7 as any] }))
        assert.strictEqual(e._tag, "ConfigError")
        assert.match(e.message, /tags\[1\]/)
        assert.isFalse(yield* cache.has({ u: 5 }))
        assert.strictEqual(yield* cache.invalidateTags([]), 0)
        assert.strictEqual(yield* cache.invalidateTags(["users", "user:3"]), 3)
        assert.deepStrictEqual(yield* cache.getMany([{ u: 1 }, { u: 2 }, { u: 3 }, { u: 4 }]), [
          Option.none(),
          Option.none(),
          Option.none(),
          Option.some("d")
        ])
        assert.strictEqual(yield* cache.invalidateTags(["users"]), 0)
        // Overwritten without tags: the entry no longer carries them.
        yield* cache.put({ u: 4 }, "d", { tags: ["t"] })
        yield* cache.put({ u: 4 }, "d2")
        assert.strictEqual(yield* cache.invalidateTags(["t"]), 0)
        assert.deepStrictEqual((yield* cache.list()).map((e) => e.tags), [[]])
        assert.deepStrictEqual((yield* cache.verify()).orphans, [])
      })))

    itScoped("invalid config fails at layer build, naming the field", () =>
      Effect.gen(function*() {
        for (
          const [config, field] of [
            [{ maxSize: "lots" }, "maxSize"],
            [{ defaultTtl: "forever-ish" }, "defaultTtl"],
            [{ inlineThreshold: -1 }, "inlineThreshold"],
            [{ bogus: true }, "bogus"]
          ] as const
        ) {
          const exit = yield* Effect.exit(run(Effect.void, config as any))
          assert.isTrue(Exit.isFailure(exit))
          const error = yield* Effect.flip(run(Effect.void, config as any))
          assert.strictEqual((error as any)._tag, "ConfigError")
          assert.include((error as any).field, field)
        }
      }))

    it.scoped("namespaces partition: the same params in two namespaces are two entries", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const plain = yield* cache.put(params, "default")
        const a = yield* cache.put(params, "in a", { namespace: "a" })
        const b = yield* cache.put(params, "in b", { namespace: "b" })
        assert.strictEqual(plain, yield* cache.key(params))
        assert.strictEqual(plain, yield* cache.key(params, { namespace: "" }))
        assert.strictEqual(a, yield* cache.key(params, { namespace: "a" }))
        assert.strictEqual(new Set([plain, a, b]).size, 3)
        assert.deepStrictEqual(yield* cache.get(params), Option.some("default"))
        assert.deepStrictEqual(yield* cache.get(params, { namespace: "a" }), Option.some("in a"))
        assert.deepStrictEqual(yield* cache.get(params, { namespace: "b" }), Option.some("in b"))
        assert.isTrue(Option.isNone(yield* cache.get(params, { namespace: "c" })))
        // The key put returns is the full identity: no namespace needed to read it back.
        assert.deepStrictEqual(yield* cache.get(a), Option.some("in a"))
        const found = Option.getOrThrow(yield* cache.getWithMetadata(params, { namespace: "b" }))
        assert.strictEqual(found.entry.namespace, "b")
        assert.strictEqual(found.entry.key, b)
        assert.isTrue(yield* cache.has(params, { namespace: "a" }))
        assert.isFalse(yield* cache.has(params, { namespace: "c" }))
        assert.isTrue(yield* cache.touch(params, "1 hour", { namespace: "b" }))
        assert.isFalse(yield* cache.touch(params, "1 hour", { namespace: "c" }))
        const stats = yield* cache.stats({ namespace: "a" })
        assert.strictEqual(stats.entries, 1)
        assert.isAbove(stats.totalBytes, 0)
        assert.strictEqual((yield* cache.stats()).entries, 3)
        assert.strictEqual((yield* cache.stats({ namespace: "" })).entries, 1)
        assert.strictEqual((yield* cache.stats({ namespace: "c" })).entries, 0)
        // Removing one namespace leaves the others.
        assert.strictEqual(yield* cache.invalidateWhere({ namespace: "a" }), 1)
        assert.isTrue(Option.isNone(yield* cache.get(params, { namespace: "a" })))
        assert.deepStrictEqual(yield* cache.get(params, { namespace: "b" }), Option.some("in b"))
        assert.deepStrictEqual(yield* cache.get(params), Option.some("default"))
        assert.strictEqual((yield* cache.stats({ namespace: "a" })).entries, 0)
        assert.strictEqual((yield* cache.stats({ namespace: "b" })).entries, 1)
        assert.isTrue(yield* cache.invalidate(params, { namespace: "b" }))
        assert.isFalse(yield* cache.invalidate(params, { namespace: "b" }))
        assert.deepStrictEqual(yield* cache.get(params), Option.some("default"))
        assert.deepStrictEqual((yield* cache.list()).map((e) => e.key), [plain])
      })))

    it.scoped("namespace options are checked: unknown fields, a CacheKey with a namespace, change nothing", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        const a = yield* cache.put(params, 1, { namespace: "a" })
        const tag = (e: unknown) => (e as { readonly _tag: string })._tag
        assert.strictEqual(tag(yield* Effect.flip(cache.stats({ namespace: "a", bogus: 1 } as any))), "ConfigError")
        assert.strictEqual(tag(yield* Effect.flip(cache.stats({ namespace: 1 } as any))), "ConfigError")
        assert.strictEqual(
          tag(yield* Effect.flip(cache.get(params, { namespace: "a", nope: 1 } as any))),
          "ConfigError"
        )
        assert.strictEqual(tag(yield* Effect.flip(cache.get(params, { namespace: 7 } as any))), "ConfigError")
        assert.strictEqual(tag(yield* Effect.flip(cache.has(params, { namespaces: "a" } as any))), "ConfigError")
        assert.strictEqual(tag(yield* Effect.flip(cache.key(params, { ns: "a" } as any))), "ConfigError")
        assert.strictEqual(tag(yield* Effect.flip(cache.invalidate(params, { namespace: null } as any))), "ConfigError")
        assert.strictEqual(tag(yield* Effect.flip(cache.touch(params, null, { x: 1 } as any))), "ConfigError")
        assert.strictEqual(tag(yield* Effect.flip(cache.put(params, 2, { namespace: 3 } as any))), "ConfigError")
        // A CacheKey already names its namespace.
        const error = yield* Effect.flip(cache.get(a, { namespace: "a" }))
        assert.strictEqual(tag(error), "KeyError")
        assert.include(error.message, "full identity")
        assert.strictEqual(tag(yield* Effect.flip(cache.invalidate(a, { namespace: "b" }))), "KeyError")
        assert.strictEqual(tag(yield* Effect.flip(cache.put(a, 3, { namespace: "b" }))), "KeyError")
        assert.deepStrictEqual(yield* cache.get(params, { namespace: "a" }), Option.some(1))
        assert.strictEqual((yield* cache.stats()).entries, 1)
        // An overwrite through the CacheKey keeps the entry in its namespace.
        yield* cache.put(a, 4)
        assert.deepStrictEqual(yield* cache.get(params, { namespace: "a" }), Option.some(4))
        assert.deepStrictEqual((yield* cache.list({ namespace: "a" })).map((e) => e.key), [a])
        assert.strictEqual((yield* cache.stats({ namespace: "a" })).entries, 1)
      })))

    it.scoped("list is in insertion order within one millisecond; an overwrite keeps its place", () =>
      run(Effect.gen(function*() {
        const cache = yield* Cache
        // No clock moves: every put in the same millisecond.
        const keys: Array<string> = []
        for (const n of [3, 1, 4, 15, 9, 2, 6]) keys.push(yield* cache.put({ n }, n, { namespace: n % 2 ? "odd" : "" }))
        const listed = (entries: ReadonlyArray<CacheEntry>) => entries.map((e) => e.key)
        assert.deepStrictEqual(listed(yield* cache.list()), keys)
        yield* cache.put({ n: 1 }, "again", { namespace: "odd" })
        assert.deepStrictEqual(listed(yield* cache.list()), keys)
        assert.deepStrictEqual(listed(yield* cache.list({ descending: true })), [...keys].reverse())
        assert.deepStrictEqual(listed(yield* cache.list({ orderBy: "createdAt" })), keys)
        assert.deepStrictEqual(listed(yield* cache.list({ limit: 3, offset: 2 })), keys.slice(2, 5))
        assert.deepStrictEqual(listed(yield* cache.list({ namespace: "odd" })), [keys[0], keys[1], keys[3], keys[4]])
      })))
  })
}
