/**
 * A memoised miss stores its result and gives up its lease in one SQLite commit (`upsert`'s
 * `leaseHolder`): the lease is gone once the value is stored, only the holder's lease goes, a
 * failed upsert keeps it, and a store that cannot (memory) leaves it for the caller to release.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStoreMemory from "../src/blob/memory.js"
import * as Cache from "../src/Cache.js"
import { internal } from "../src/cache/internal.js"
import * as CodecDefault from "../src/codec/registry.js"
import { cached } from "../src/index.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import { MetadataStore } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { makeTempDir, tempDir } from "./support/tmp.js"

const sqliteStore = Layer.unwrapScoped(Effect.gen(function*() {
  const dir = yield* Effect.acquireRelease(
    Effect.sync(makeTempDir),
    (d) => Effect.sync(() => fs.rmSync(d, { recursive: true, force: true }))
  )
  return MetadataStoreSqlite.layer({ filename: path.join(dir, "cache.db") })
}))

describe("upsert with a lease holder (sqlite)", () => {
  it.scoped("stores the entry and frees that holder's lease in the same commit", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore
      assert.isTrue(yield* store.acquireLease(key(1), "a", 10_000, 1_000))
      const written = yield* store.upsert(record(key(1)), undefined, "a")
      assert.isTrue(written.leaseReleased)
      assert.isTrue((yield* store.lookup(key(1)))._tag === "Some")
      // Free: another holder takes it at once, long before the lease would have expired.
      assert.isTrue(yield* store.acquireLease(key(1), "b", 10_000, 1_001))
    }).pipe(Effect.provide(sqliteStore)))

  it.scoped("leaves another holder's lease alone", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore
      assert.isTrue(yield* store.acquireLease(key(1), "a", 10_000, 1_000))
      yield* store.upsert(record(key(1)), undefined, "b")
      assert.isFalse(yield* store.acquireLease(key(1), "c", 10_000, 1_001), "still a's")
    }).pipe(Effect.provide(sqliteStore)))

  it.scoped("a failed upsert keeps the lease and stores nothing", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore
      assert.isTrue(yield* store.acquireLease(key(1), "a", 10_000, 1_000))
      const failed = yield* Effect.flip(
        store.upsert(record(key(1)), [{ table: "no_such_table", row: { x: 1 } }], "a")
      )
      assert.strictEqual(failed.reason, "UnknownTable")
      assert.isTrue((yield* store.lookup(key(1)))._tag === "None")
      assert.isFalse(yield* store.acquireLease(key(1), "b", 10_000, 1_001), "still held by a")
    }).pipe(Effect.provide(sqliteStore)))
})

describe("upsert with a lease holder (memory)", () => {
  it.scoped("a store that cannot release in the upsert says so and keeps the lease", () =>
    Effect.gen(function*() {
      const store = yield* MetadataStore
      assert.isTrue(yield* store.acquireLease(key(1), "a", 10_000, 1_000))
      const written = yield* store.upsert(record(key(1)), undefined, "a")
      assert.notStrictEqual(written.leaseReleased, true)
      assert.isFalse(yield* store.acquireLease(key(1), "b", 10_000, 1_001))
    }).pipe(Effect.provide(MetadataStoreMemory.layer)))
})

const layers = {
  sqlite: () =>
    Layer.unwrapScoped(Effect.map(tempDir, (directory) => Cache.layer({ directory, cleanupOnOpen: false }))),
  memory: () => Cache.layerMemory({ cleanupOnOpen: false })
} as const

for (const [name, layer] of Object.entries(layers)) {
  describe(`cached miss on ${name}`, () => {
    it.scoped("leaves no lease behind once its value is stored", () =>
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        let runs = 0
        const f = cached((n: number) => Effect.sync(() => (runs++, n * 2)), { name: "double" })
        assert.strictEqual(yield* f(21), 42)
        assert.strictEqual(runs, 1)
        const key = yield* cache.key({ fn: "double", args: [21] }, { namespace: f.namespace })
        // Free whichever way the store released it: another holder takes it at once.
        assert.isTrue(yield* internal(cache).memo.acquireLease(key, "someone else", 10_000))
        // And the stored value answers the next call (the memo off: a store read).
        const g = cached((n: number) => Effect.sync(() => (runs++, n * 2)), { name: "double", memo: false })
        assert.strictEqual(yield* g(21), 42)
        assert.strictEqual(runs, 1)
      }).pipe(Effect.provide(layer())))

    it.scoped("a failure that is not stored still frees the lease", () =>
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const f = cached((n: number) => Effect.fail(`no ${n}`), { name: "failing" })
        assert.strictEqual(yield* Effect.flip(f(1)), "no 1")
        const key = yield* cache.key({ fn: "failing", args: [1] }, { namespace: f.namespace })
        assert.isTrue(yield* internal(cache).memo.acquireLease(key, "someone else", 10_000))
      }).pipe(Effect.provide(layer())))
  })
}

describe("cached miss, a renewal in flight when the result frees the lease", () => {
  it.scoped("the lease the renewal took back is released once the heartbeat stops", () =>
    Effect.gen(function*() {
      const renewalStarted = yield* Deferred.make<void>()
      const stored = yield* Deferred.make<void>()
      let computing: string | undefined
      let renewing = false
      let storedUnderLease = false
      const noteStored = (holder: string | undefined) => {
        if (holder === undefined) return
        storedUnderLease = true
        Deferred.unsafeDone(stored, Exit.void)
      }
      // SQLite frees the lease in the result's commit; the heartbeat's first renewal is held back
      // until that commit, then takes the lease again (for a minute: long after the test ends).
      const racing = Layer.effect(
        MetadataStore,
        Effect.map(MetadataStore, (store): MetadataStore.Service => ({
          ...store,
          acquireLease: (key, holder, until, now) => {
            // The first call takes the lease; the computing holder's next one is the renewal.
            if (computing === undefined) computing = holder
            else if (holder === computing && !renewing) {
              renewing = true
              Deferred.unsafeDone(renewalStarted, Exit.void)
              return Effect.zipRight(
                Deferred.await(stored),
                Effect.suspend(() => store.acquireLease(key, holder, Date.now() + 60_000, Date.now()))
              )
            }
            return store.acquireLease(key, holder, until, now)
          },
          // A miss's first take, where the store has it.
          acquireLeaseIfAbsent: store.acquireLeaseIfAbsent === null ? null : (key, holder, until, now, liveAt) => {
            if (computing === undefined) computing = holder
            return store.acquireLeaseIfAbsent!(key, holder, until, now, liveAt)
          },
          upsert: (record, rows, holder) => Effect.tap(store.upsert(record, rows, holder), () => noteStored(holder)),
          unsafeUpsert: (record, rows, holder) => {
            const written = store.unsafeUpsert(record, rows, holder)
            noteStored(holder)
            return written
          }
        }))
      ).pipe(Layer.provide(sqliteStore))
      const layer = Cache.layerFromServices({ cleanupOnOpen: false }).pipe(
        Layer.provide(Layer.mergeAll(HasherXxhash.layer, CodecDefault.layer(), racing, BlobStoreMemory.layer))
      )
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        // Renewed every 10 ms; the function returns once the first renewal is under way.
        const f = cached((n: number) => Effect.as(Deferred.await(renewalStarted), n * 2), {
          name: "raced",
          leaseTtl: 30
        })
        assert.strictEqual(yield* f(21), 42)
        assert.isTrue(renewing && storedUnderLease, "renewed, then stored under the lease")
        const key = yield* cache.key({ fn: "raced", args: [21] }, { namespace: f.namespace })
        assert.isTrue(yield* internal(cache).memo.acquireLease(key, "someone else", 10_000), "the lease is free")
      }).pipe(Effect.provide(layer))
    }))
})
