// CacheKeyValueStore: an @effect/platform KeyValueStore over a namespace of the cache, on every
// metadata backend. The first block holds it to what @effect/platform's own KeyValueStore suite
// asserts of its stores (set, a missing get, remove, clear, size, modify, modify of a missing key,
// prefix, SchemaStore encode/decode); the rest to what cacheness adds (types kept, per-namespace
// size and clear, no TTL, digest-looking keys, atomic modify, in this process and across 20).
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { identity } from "effect/Function"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as Cache from "../src/Cache.js"
import * as CacheKeyValueStore from "../src/CacheKeyValueStore.js"
import { ConfigError } from "../src/errors.js"
import { adapterCaches } from "./support/adapterCaches.js"
import { runChild } from "./support/child.js"
import { pgDescribe } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

class User extends Schema.Class<User>("User")({ name: Schema.String, age: Schema.Number }) {}

for (const backend of adapterCaches) {
  const suite = backend.name === "PostgreSQL" ? pgDescribe : describe
  suite(`CacheKeyValueStore on ${backend.name}`, () => {
    /** A fresh cache with a store over it (the cache stays reachable, to look underneath). */
    const provide = <A, E>(
      effect: Effect.Effect<A, E, KeyValueStore.KeyValueStore | Cache.Cache>,
      options?: CacheKeyValueStore.Options
    ) => Effect.provide(effect, CacheKeyValueStore.layer(options).pipe(Layer.provideMerge(backend.layer())))

    describe("what @effect/platform's KeyValueStore suite asserts", () => {
      it.effect("set: the value reads back and counts", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("/foo/bar", "bar")
          assert.deepStrictEqual(yield* kv.get("/foo/bar"), Option.some("bar"))
          assert.strictEqual(yield* kv.size, 1)
        })))

      it.effect("get of a missing key is None", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.clear
          assert.deepStrictEqual(yield* kv.get("foo"), Option.none())
          assert.deepStrictEqual(yield* kv.getUint8Array("foo"), Option.none())
        })))

      it.effect("remove: gone, not counted", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("foo", "bar")
          yield* kv.remove("foo")
          assert.deepStrictEqual(yield* kv.get("foo"), Option.none())
          assert.strictEqual(yield* kv.has("foo"), false)
          assert.strictEqual(yield* kv.size, 0)
        })))

      it.effect("clear: every entry gone", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("foo", "bar")
          yield* kv.set("baz", new Uint8Array([1]))
          yield* kv.clear
          assert.deepStrictEqual(yield* kv.get("foo"), Option.none())
          assert.strictEqual(yield* kv.size, 0)
          assert.strictEqual(yield* kv.isEmpty, true)
        })))

      it.effect("size counts the entries", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("a", "1")
          yield* kv.set("b", "2")
          yield* kv.set("a", "3")
          assert.strictEqual(yield* kv.size, 2)
        })))

      it.effect("modify: the new value is returned and stored", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          yield* kv.set("foo", "bar")
          assert.deepStrictEqual(yield* kv.modify("foo", (v) => v + "bar"), Option.some("barbar"))
          assert.deepStrictEqual(yield* kv.get("foo"), Option.some("barbar"))
          assert.strictEqual(yield* kv.size, 1)
        })))

      it.effect("modify of a missing key is None and stores nothing", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          assert.deepStrictEqual(yield* kv.modify("foo", (v) => v + "bar"), Option.none())
          assert.strictEqual(yield* kv.size, 0)
        })))

      it.effect("prefix: the prefixed store writes under the prefixed keys", () =>
        provide(Effect.gen(function*() {
          const kv = yield* KeyValueStore.KeyValueStore
          const prefixed = KeyValueStore.prefix(kv, "prefix/")
          yield* prefixed.set("foo", "bar")
          yield* prefixed.modify("foo", (v) => v + "bar")
          assert.deepStrictEqual(yield* prefixed.get("foo"), Option.some("barbar"))
          assert.strictEqual(yield* prefixed.has("foo"), true)
          assert.deepStrictEqual(yield* kv.get("prefix/foo"), Option.some("barbar"))
          assert.strictEqual(yield* kv.has("prefix/foo"), true)
          assert.strictEqual(yield* kv.has("foo"), false)
        })))

      it.effect("SchemaStore: encodes, modifies and decodes, directly and prefixed", () => {
        const Users = KeyValueStore.layerSchema(User, "Users")
        return Effect.gen(function*() {
          const users = yield* Users.tag
          yield* users.set("foo", new User({ name: "foo", age: 42 }))
          yield* users.modify("foo", (user) => new User({ ...user, age: 43 }))
          const user = yield* Effect.flatMap(users.get("foo"), identity)
          assert.instanceOf(user, User)
          assert.strictEqual(user.name, "foo")
          assert.strictEqual(user.age, 43)
          // Underneath it is the JSON text the SchemaStore wrote, as a string.
          const kv = yield* KeyValueStore.KeyValueStore
          assert.deepStrictEqual(
            Option.map(yield* kv.get("foo"), (s) => JSON.parse(s)),
            Option.some({ name: "foo", age: 43 })
          )

          const prefixed = KeyValueStore.prefix(users, "prefix/")
          yield* prefixed.set("bar", new User({ name: "bar", age: 7 }))
          const stored = yield* Effect.flatMap(users.get("prefix/bar"), identity)
          assert.strictEqual(stored.name, "bar")
          assert.strictEqual(stored.age, 7)
        }).pipe(Effect.provide(Users.layer), provide)
      })
    })

    it.effect("strings and Uint8Arrays keep their type", () =>
      provide(Effect.gen(function*() {
        const kv = yield* KeyValueStore.KeyValueStore
        const bytes = new Uint8Array([0, 1, 2, 255])
        yield* kv.set("text", "héllo")
        yield* kv.set("bytes", bytes)
        const text = yield* kv.get("text")
        assert.deepStrictEqual(text, Option.some("héllo"))
        const read = Option.getOrThrow(yield* kv.getUint8Array("bytes"))
        assert.instanceOf(read, Uint8Array)
        assert.deepStrictEqual(Array.from(read), [0, 1, 2, 255])
        // Each read as the other kind: UTF-8 either way.
        assert.deepStrictEqual(
          Array.from(Option.getOrThrow(yield* kv.getUint8Array("text"))),
          Array.from(new TextEncoder().encode("héllo"))
        )
        yield* kv.set("utf8", new TextEncoder().encode("ok"))
        assert.deepStrictEqual(yield* kv.get("utf8"), Option.some("ok"))
        const bytesModified = yield* kv.modifyUint8Array("bytes", (b) => b.map((x) => 255 - x))
        assert.deepStrictEqual(Option.map(bytesModified, Array.from), Option.some([255, 254, 253, 0]))
        assert.deepStrictEqual(
          Option.map(yield* kv.getUint8Array("bytes"), Array.from),
          Option.some([255, 254, 253, 0])
        )
      })))

    it.effect("size and clear are of the store's namespace only; a namespace is part of the key", () =>
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const a = yield* CacheKeyValueStore.make(cache, { namespace: "a" })
        const b = yield* CacheKeyValueStore.make(cache, { namespace: "b" })
        yield* cache.put({ unrelated: true }, "kept", { ttl: null })
        yield* a.set("k", "from a")
        yield* a.set("only-a", "1")
        yield* b.set("k", "from b")
        assert.deepStrictEqual(yield* a.get("k"), Option.some("from a"))
        assert.deepStrictEqual(yield* b.get("k"), Option.some("from b"))
        assert.strictEqual(yield* a.size, 2)
        assert.strictEqual(yield* b.size, 1)
        yield* a.clear
        assert.strictEqual(yield* a.size, 0)
        assert.deepStrictEqual(yield* b.get("k"), Option.some("from b"))
        assert.deepStrictEqual(yield* cache.get({ unrelated: true }), Option.some("kept"))
        const listed = yield* cache.list({ namespace: "b" })
        assert.deepStrictEqual(listed.map((e) => e.params), [{ key: "k" }])
      }).pipe(Effect.provide(backend.layer())))

    it.effect("a store is not a cache: its entries never expire, whatever the cache's default TTL", () =>
      provide(Effect.gen(function*() {
        const kv = yield* KeyValueStore.KeyValueStore
        const cache = yield* Cache.Cache
        yield* kv.set("forever", "yes")
        yield* TestClock.adjust("72 hours") // three times the cache's default TTL
        yield* cache.cleanupExpired()
        assert.deepStrictEqual(yield* kv.get("forever"), Option.some("yes"))
        const [entry] = yield* cache.list({ namespace: CacheKeyValueStore.DEFAULT_NAMESPACE })
        assert.strictEqual(entry.expiresAt, null)
      })))

    it.effect("a key that looks like a digest is a key like any other", () =>
      provide(Effect.gen(function*() {
        const kv = yield* KeyValueStore.KeyValueStore
        const cache = yield* Cache.Cache
        const digest = yield* cache.put({ model: "m" }, "the cache's own entry", { ttl: null })
        yield* kv.set(digest, "the store's entry")
        assert.deepStrictEqual(yield* kv.get(digest), Option.some("the store's entry"))
        assert.deepStrictEqual(yield* cache.get(digest), Option.some("the cache's own entry"))
        yield* kv.remove(digest)
        assert.deepStrictEqual(yield* cache.get(digest), Option.some("the cache's own entry"))
      })))

    it.effect("a value the store did not write is an InvalidData error, not a wrong type", () =>
      provide(Effect.gen(function*() {
        const kv = yield* KeyValueStore.KeyValueStore
        const cache = yield* Cache.Cache
        yield* cache.put({ key: "n" }, 42, { namespace: CacheKeyValueStore.DEFAULT_NAMESPACE })
        const error = yield* Effect.flip(kv.get("n"))
        assert.strictEqual(error._tag, "SystemError")
        assert.strictEqual(error._tag === "SystemError" && error.reason, "InvalidData")
        assert.match(error.message, /not a string or a Uint8Array/)
      })))

    it.live("concurrent modifies in one process lose no update", () =>
      provide(Effect.gen(function*() {
        const kv = yield* KeyValueStore.KeyValueStore
        yield* kv.set("n", "0")
        yield* Effect.forEach(
          Array.from({ length: 40 }),
          () => kv.modify("n", (v) => String(Number(v) + 1)),
          { concurrency: "unbounded", discard: true }
        )
        assert.deepStrictEqual(yield* kv.get("n"), Option.some("40"))
      })))

    it.effect("bad options are a ConfigError that changes nothing", () =>
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const unknown = yield* Effect.flip(CacheKeyValueStore.make(cache, { namspace: "x" } as never))
        assert.instanceOf(unknown, ConfigError)
        assert.match(unknown.message, /namspace/)
        const wrongType = yield* Effect.flip(CacheKeyValueStore.make(cache, { namespace: 1 } as never))
        assert.instanceOf(wrongType, ConfigError)
        const exit = yield* Effect.exit(
          Effect.provide(KeyValueStore.KeyValueStore, CacheKeyValueStore.layer({ namspace: "x" } as never))
        )
        assert.isTrue(Exit.isFailure(exit) && Cause.isDie(exit.cause))
        assert.strictEqual((yield* cache.stats()).entries, 0)
      }).pipe(Effect.provide(backend.layer())))
  })
}

describe("CacheKeyValueStore across processes", () => {
  it.live("20 processes × modify on one key (SQLite, one directory): no update lost", () =>
    Effect.gen(function*() {
      const directory = makeTempDir()
      const workers = 20
      const rounds = 5
      const store = CacheKeyValueStore.layer().pipe(Layer.provide(Cache.layer({ directory })))
      yield* Effect.provide(Effect.flatMap(KeyValueStore.KeyValueStore, (kv) => kv.set("counter", "0")), store)
      // Every worker starts its modifies at the same instant, once all have had time to start.
      const startAt = String(Date.now() + 8_000)
      const results = yield* Effect.promise(() =>
        Promise.all(
          Array.from(
            { length: workers },
            () => runChild("test/support/kvModifyWorker.ts", [directory, String(rounds), startAt])
          )
        )
      )
      for (const r of results) assert.strictEqual(r.code, 0, r.stderr)
      const count = yield* Effect.provide(Effect.flatMap(KeyValueStore.KeyValueStore, (kv) => kv.get("counter")), store)
      fs.rmSync(directory, { recursive: true, force: true })
      assert.deepStrictEqual(count, Option.some(String(workers * rounds)))
    }), 240_000)
})
