// CachePersistence: an @effect/experimental BackingPersistence over the cache, on every metadata
// backend: store ids are namespaces, TTLs are entry TTLs, values are stored as given; and a
// PersistedCache on it shared by two real processes computes a request once, a typed failure
// coming back as that failure.
import * as Persistence from "@effect/experimental/Persistence"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Scope from "effect/Scope"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as Cache from "../src/Cache.js"
import * as CachePersistence from "../src/CachePersistence.js"
import { ConfigError } from "../src/errors.js"
import { adapterCaches } from "./support/adapterCaches.js"
import { runChild } from "./support/child.js"
import { pgDescribe } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

for (const backend of adapterCaches) {
  const suite = backend.name === "PostgreSQL" ? pgDescribe : describe
  suite(`CachePersistence on ${backend.name}`, () => {
    const provide = <A, E>(effect: Effect.Effect<A, E, Persistence.BackingPersistence | Cache.Cache | Scope.Scope>) =>
      Effect.scoped(Effect.provide(effect, CachePersistence.layer().pipe(Layer.provideMerge(backend.layer()))))

    it.effect("get, set, remove, clear", () =>
      provide(Effect.gen(function*() {
        const backing = yield* Persistence.BackingPersistence
        const store = yield* backing.make("s")
        assert.deepStrictEqual(yield* store.get("a"), Option.none())
        yield* store.set("a", { value: [1, 2, 3], nested: { ok: true } }, Option.none())
        assert.deepStrictEqual(yield* store.get("a"), Option.some({ value: [1, 2, 3], nested: { ok: true } }))
        yield* store.remove("a")
        assert.deepStrictEqual(yield* store.get("a"), Option.none())
        yield* store.set("b", "two", Option.none())
        yield* store.clear
        assert.deepStrictEqual(yield* store.get("b"), Option.none())
      })))

    it.effect("values are stored natively, not as a JSON string", () =>
      provide(Effect.gen(function*() {
        const backing = yield* Persistence.BackingPersistence
        const cache = yield* Cache.Cache
        const store = yield* backing.make("native")
        yield* store.set("bytes", new Uint8Array([1, 2, 3]), Option.none())
        yield* store.set("object", { a: 1 }, Option.none())
        const bytes = Option.getOrThrow(yield* store.get("bytes"))
        assert.instanceOf(bytes, Uint8Array)
        const formats = (yield* cache.list({ namespace: "native" })).map((e) => e.format).sort()
        assert.deepStrictEqual(formats.includes("bytes"), true)
      })))

    it.effect("getMany and setMany, in order", () =>
      provide(Effect.gen(function*() {
        const backing = yield* Persistence.BackingPersistence
        const store = yield* backing.make("many")
        yield* store.setMany([["x", 1, Option.none()], ["y", 2, Option.some(Duration.hours(1))]])
        assert.deepStrictEqual(yield* store.getMany(["y", "missing", "x"]), [
          Option.some(2),
          Option.none(),
          Option.some(1)
        ])
        assert.deepStrictEqual(yield* store.getMany([]), [])
      })))

    it.effect("each store id is a namespace: same keys, separate entries, clear of one leaves the other", () =>
      provide(Effect.gen(function*() {
        const backing = yield* Persistence.BackingPersistence
        const cache = yield* Cache.Cache
        const one = yield* backing.make("one")
        const two = yield* backing.make("two")
        yield* one.set("k", "from one", Option.none())
        yield* two.set("k", "from two", Option.none())
        assert.deepStrictEqual(yield* one.get("k"), Option.some("from one"))
        assert.deepStrictEqual(yield* two.get("k"), Option.some("from two"))
        yield* one.clear
        assert.deepStrictEqual(yield* one.get("k"), Option.none())
        assert.deepStrictEqual(yield* two.get("k"), Option.some("from two"))
        assert.strictEqual((yield* cache.list({ namespace: "two" })).length, 1)
      })))

    it.effect("TTLs are entry TTLs; none means never; a zero TTL stores nothing", () =>
      provide(Effect.gen(function*() {
        const backing = yield* Persistence.BackingPersistence
        const cache = yield* Cache.Cache
        const store = yield* backing.make("ttl")
        yield* store.set("short", "s", Option.some(Duration.minutes(5)))
        yield* store.set("forever", "f", Option.none())
        yield* store.set("zero", "z", Option.some(Duration.zero))
        const short = (yield* cache.list({ namespace: "ttl" })).find((e) => e.params?.key === "short")
        assert.isDefined(short)
        assert.strictEqual(short!.expiresAt! - short!.createdAt, 5 * 60_000)
        assert.deepStrictEqual(yield* store.get("zero"), Option.none())
        yield* TestClock.adjust("6 minutes")
        assert.deepStrictEqual(yield* store.get("short"), Option.none())
        yield* TestClock.adjust("72 hours")
        assert.deepStrictEqual(yield* store.get("forever"), Option.some("f"))
      })))

    it.effect("bad options are a ConfigError", () =>
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const error = yield* Effect.flip(CachePersistence.make(cache, { prefx: "p" } as never))
        assert.instanceOf(error, ConfigError)
        assert.match(error.message, /prefx/)
        const exit = yield* Effect.exit(
          Effect.provide(Persistence.BackingPersistence, CachePersistence.layer({ prefix: 3 } as never))
        )
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
      }).pipe(Effect.provide(backend.layer())))
  })
}

describe("PersistedCache on CachePersistence, across processes", () => {
  const run = async (directory: string, id: number) => {
    const result = await runChild("test/support/persistedWorker.ts", [directory, String(id)])
    assert.strictEqual(result.code, 0, result.stderr)
    return JSON.parse(result.stdout.trim()) as Record<string, any>
  }

  it.live(
    "two processes on one directory compute a request once; a typed failure round-trips",
    () =>
      Effect.promise(async () => {
        const directory = makeTempDir()
        try {
          const first = await run(directory, 2)
          const second = await run(directory, 2)
          assert.deepStrictEqual(first, { success: { isUser: true, name: "user 2" }, lookups: 1 })
          assert.deepStrictEqual(second, { success: { isUser: true, name: "user 2" }, lookups: 0 })
          const failed = await run(directory, 3)
          const again = await run(directory, 3)
          assert.deepStrictEqual(failed, { failure: { isNotFound: true, tag: "NotFound" }, lookups: 1 })
          assert.deepStrictEqual(again, { failure: { isNotFound: true, tag: "NotFound" }, lookups: 0 })
        } finally {
          fs.rmSync(directory, { recursive: true, force: true })
        }
      }),
    120_000
  )
})
