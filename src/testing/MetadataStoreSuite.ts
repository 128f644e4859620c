import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { EntryRecord } from "../metadata/service.js"
import { MetadataStore } from "../metadata/service.js"
import { NotSync } from "../shared/sync.js"

/**
 * A complete entry record for store tests; `overrides` replace any field.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const record = (key: string, overrides: Partial<EntryRecord> = {}): EntryRecord => ({
  key,
  namespace: "",
  description: null,
  format: "v8",
  codec: "none",
  storedBytes: 100,
  rawBytes: 100,
  checksum: "00000000000000aa",
  blobId: null,
  inline: new Uint8Array([1, 2, 3]),
  createdAt: 1_000,
  accessedAt: 1_000,
  expiresAt: null,
  hits: 0,
  params: JSON.stringify({ k: key }),
  metadata: null,
  ...overrides
})

/**
 * The `n`th cache key: 16 lowercase hex digits, as the engine writes them.
 *
 * @since 0.1.0
 * @category fixtures
 */
export const key = (n: number) => n.toString(16).padStart(16, "0")

/**
 * The contract every MetadataStore backend passes; each test builds `layer` afresh (an empty store).
 *
 * @since 0.1.0
 * @category suites
 */
export const metadataStoreSuite = (name: string, layer: Layer.Layer<MetadataStore, unknown>): void => {
  describe(`MetadataStore contract: ${name}`, () => {
    // Providing a layer builds it anew, so every test starts from an empty store.
    const run = <A, E>(self: Effect.Effect<A, E, MetadataStore>) => Effect.provide(self, layer)

    it.scoped("upsert then lookup returns the record with its inline value", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { description: "one", metadata: JSON.stringify({ a: 1 }) }))
        const found = yield* store.lookup(key(1))
        assert.isTrue(Option.isSome(found))
        const r = Option.getOrThrow(found)
        assert.strictEqual(r.description, "one")
        assert.deepStrictEqual(Array.from(r.inline!), [1, 2, 3])
        assert.strictEqual(r.metadata, JSON.stringify({ a: 1 }))
        assert.isTrue(Option.isNone(yield* store.lookup(key(2))))
      })))

    it.scoped("upsert reports the replaced blob id and running total", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        const first = yield* store.upsert(record(key(1), { blobId: `${key(1)}-a`, inline: null, storedBytes: 500 }))
        assert.deepStrictEqual(first, { replacedBlobId: null, totalBytes: 500 })
        const second = yield* store.upsert(record(key(1), { blobId: `${key(1)}-b`, inline: null, storedBytes: 700 }))
        assert.deepStrictEqual(second, { replacedBlobId: `${key(1)}-a`, totalBytes: 700 })
        const third = yield* store.upsert(record(key(2), { storedBytes: 10 }))
        assert.deepStrictEqual(third, { replacedBlobId: null, totalBytes: 710 })
        const totals = yield* store.totals
        assert.strictEqual(totals.entries, 2)
        assert.strictEqual(totals.totalBytes, 710)
      })))

    it.scoped("remove by keys, namespace, creation time, expiry and checksum", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { namespace: "a", createdAt: 10 }))
        yield* store.upsert(record(key(2), { namespace: "a", createdAt: 20, expiresAt: 50 }))
        yield* store.upsert(record(key(3), { namespace: "b", createdAt: 30, expiresAt: 500 }))
        yield* store.upsert(record(key(4), { namespace: "b", createdAt: 40, checksum: "ffffffffffffffff" }))

        assert.deepStrictEqual((yield* store.remove({ expiredAt: 100 })).map((r) => r.key), [key(2)])
        assert.deepStrictEqual((yield* store.remove({ keys: [key(4)], checksum: "0000000000000000" })).length, 0)
        assert.deepStrictEqual((yield* store.remove({ createdBefore: 15 })).map((r) => r.key), [key(1)])
        const removed = yield* store.remove({ namespace: "b", keys: [key(3), key(4), key(9)] })
        assert.deepStrictEqual(removed.map((r) => r.key).sort(), [key(3), key(4)])
        assert.strictEqual((yield* store.totals).entries, 0)
      })))

    it.scoped("remove honours a limit", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        for (let i = 0; i < 10; i++) yield* store.upsert(record(key(i), { expiresAt: 5 }))
        assert.strictEqual((yield* store.remove({ expiredAt: 10, limit: 4 })).length, 4)
        assert.strictEqual((yield* store.totals).entries, 6)
      })))

    it.scoped("removeCounted (when a store has it) counts what went and lists the blobs", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        for (let i = 0; i < 6; i++) {
          yield* store.upsert(record(key(i), {
            expiresAt: i < 4 ? 5 : null,
            blobId: i % 2 === 0 ? `blob-${i}` : null,
            inline: i % 2 === 0 ? null : new Uint8Array([1])
          }))
        }
        const first = yield* store.removeCounted({ expiredAt: 10, limit: 3 })
        const second = yield* store.removeCounted({ expiredAt: 10, limit: 3 })
        assert.deepStrictEqual([first.removed, second.removed], [3, 1])
        assert.deepStrictEqual([...first.blobIds, ...second.blobIds].sort(), ["blob-0", "blob-2"])
        assert.deepStrictEqual(yield* store.removeCounted({ keys: [key(5)], checksum: "ffffffffffffffff" }), {
          removed: 0,
          blobIds: []
        })
        assert.strictEqual((yield* store.totals).entries, 2)
      })))

    it.scoped("totals match a scan after expired entries are removed in batches", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        for (let i = 0; i < 50; i++) {
          yield* store.upsert(record(key(i), { storedBytes: 10 + i, expiresAt: i % 2 === 0 ? 5 : null }))
        }
        let removed = 0
        for (;;) {
          const batch = yield* store.remove({ expiredAt: 10, limit: 7 })
          removed += batch.length
          if (batch.length < 7) break
        }
        assert.strictEqual(removed, 25)
        const left = yield* store.list({})
        const totals = yield* store.totals
        assert.strictEqual(totals.entries, left.length)
        assert.strictEqual(totals.totalBytes, left.reduce((n, r) => n + r.storedBytes, 0))
      })))

    it.scoped("select filters without inline values", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { namespace: "a" }))
        yield* store.upsert(record(key(2), { namespace: "b" }))
        const rows = yield* store.select({ namespace: "a" })
        assert.deepStrictEqual(rows.map((r) => r.key), [key(1)])
        assert.strictEqual(rows[0].inline, null)
      })))

    it.scoped("list orders, pages and filters by namespace", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        for (let i = 0; i < 5; i++) {
          yield* store.upsert(
            record(key(i), { createdAt: 100 - i, storedBytes: i * 10, namespace: i % 2 === 0 ? "even" : "odd" })
          )
        }
        const byCreated = yield* store.list({ orderBy: "createdAt" })
        assert.deepStrictEqual(byCreated.map((r) => r.key), [4, 3, 2, 1, 0].map(key))
        const bySize = yield* store.list({ orderBy: "storedBytes", descending: true, limit: 2 })
        assert.deepStrictEqual(bySize.map((r) => r.key), [key(4), key(3)])
        const page = yield* store.list({ orderBy: "key", limit: 2, offset: 2 })
        assert.deepStrictEqual(page.map((r) => r.key), [key(2), key(3)])
        const even = yield* store.list({ namespace: "even", orderBy: "key" })
        assert.deepStrictEqual(even.map((r) => r.key), [key(0), key(2), key(4)])
        assert.strictEqual(even[0].inline, null)
      })))

    it.scoped("touch renews live entries only", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { expiresAt: 100 }))
        assert.isTrue(yield* store.touch(key(1), 1_000, 50))
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).expiresAt, 1_000)
        assert.isFalse(yield* store.touch(key(1), 5_000, 2_000))
        assert.isFalse(yield* store.touch(key(7), 5_000, 0))
        assert.isTrue(yield* store.touch(key(1), null, 500))
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).expiresAt, null)
      })))

    it.scoped("grace: staleUntil round-trips; expiry removal takes only entries past their grace; touch keeps the grace", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { expiresAt: 100, staleUntil: 100 }))
        yield* store.upsert(record(key(2), { expiresAt: 100, staleUntil: 400 }))
        yield* store.upsert(record(key(3), { expiresAt: null, staleUntil: null }))
        const found = Option.getOrThrow(yield* store.lookup(key(2)))
        assert.strictEqual(found.staleUntil, 400)
        assert.strictEqual(Option.getOrThrow(yield* store.probe(key(2))).staleUntil, 400)
        const probed = store.unsafeProbe(key(2))
        if (probed !== NotSync) assert.strictEqual(probed?.staleUntil, 400, "the fast probe carries staleUntil")
        assert.strictEqual((yield* store.list({ orderBy: "key" }))[1].staleUntil, 400)
        assert.strictEqual((yield* store.listEntries({ orderBy: "key" }))[1].staleUntil, 400)
        assert.strictEqual((yield* store.listEntries({ orderBy: "key" }))[2].staleUntil, null)
        // At 200 key 1 is gone, key 2 is stale (inside its grace): only key 1 goes.
        assert.deepStrictEqual((yield* store.remove({ expiredAt: 200 })).map((r) => r.key), [key(1)])
        assert.deepStrictEqual((yield* store.select({ expiredAt: 399 })).map((r) => r.key), [])
        // Touched while fresh: the expiry moves and the grace (300) with it.
        yield* store.upsert(record(key(4), { expiresAt: 1_000, staleUntil: 1_300 }))
        assert.isTrue(yield* store.touch(key(4), 2_000, 500))
        const touched = Option.getOrThrow(yield* store.lookup(key(4)))
        assert.strictEqual(touched.expiresAt, 2_000)
        assert.strictEqual(touched.staleUntil, 2_300)
        assert.isTrue(yield* store.touch(key(4), null, 600))
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(4))).staleUntil, null)
        assert.deepStrictEqual((yield* store.remove({ expiredAt: 400 })).map((r) => r.key), [key(2)])
        assert.strictEqual((yield* store.totals).entries, 2)
      })))

    it.scoped("recorded accesses count hits and misses and move access time", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1)))
        yield* store.recordAccess(key(1), 5_000)
        yield* store.recordAccess(key(1), 4_000)
        yield* store.recordAccess(null, 5_000)
        yield* store.flush
        const r = Option.getOrThrow(yield* store.lookup(key(1)))
        assert.strictEqual(r.hits, 2)
        assert.strictEqual(r.accessedAt, 5_000)
        const totals = yield* store.totals
        assert.strictEqual(totals.hits, 2)
        assert.strictEqual(totals.misses, 1)
      })))

    it.scoped("a read that flushes first also waits for a flush already in flight", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1)))
        // Several open connections (PostgreSQL's pool), so the read below need not wait for one.
        yield* Effect.all(Array.from({ length: 4 }, () => store.totals), { concurrency: "unbounded" })
        for (let i = 0; i < 5; i++) yield* store.recordAccess(key(1), 1_000 + i)
        yield* store.recordAccess(null, 2_000)
        // The background flush takes the batch, and its write is under way...
        const inFlight = yield* Effect.fork(store.flush)
        yield* Effect.yieldNow()
        // ...when totals flushes what is left (nothing) and reads the counters.
        const totals = yield* store.totals
        yield* Fiber.join(inFlight)
        assert.strictEqual(totals.hits, 5)
        assert.strictEqual(totals.misses, 1)
      })))

    it.scoped("evict removes least recently used first until enough is freed", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        for (let i = 0; i < 5; i++) yield* store.upsert(record(key(i), { accessedAt: 100 + i, storedBytes: 100 }))
        yield* store.recordAccess(key(0), 1_000) // now the most recent
        const evicted = yield* store.evict(250)
        assert.deepStrictEqual(evicted.map((r) => r.key), [key(1), key(2), key(3)])
        assert.strictEqual((yield* store.totals).totalBytes, 200)
      })))

    it.scoped("clear removes everything and returns blob references", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { blobId: `${key(1)}-x`, inline: null }))
        yield* store.upsert(record(key(2)))
        const removed = yield* store.clear
        assert.deepStrictEqual(removed.map((r) => r.blobId).sort(), [`${key(1)}-x`, null].sort())
        assert.deepStrictEqual(yield* store.totals, { entries: 0, totalBytes: 0, hits: 0, misses: 0 })
      })))

    it.scoped("path fingerprints: saved, looked up in bulk, replaced by path, independent of entries", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        assert.deepStrictEqual(yield* store.lookupFingerprints(["/a", "/b"]), [])
        yield* store.saveFingerprints([])
        yield* store.saveFingerprints([
          { path: "/data/a.csv", stat: "4:1:1:10:1", hash: "00000000000000a1" },
          { path: "/data/é b.csv", stat: "5:2:2:11:1", hash: "00000000000000b1" }
        ])
        const found = yield* store.lookupFingerprints(["/data/a.csv", "/missing", "/data/é b.csv"])
        assert.deepStrictEqual(
          [...found].sort((x, y) => x.path < y.path ? -1 : 1),
          [
            { path: "/data/a.csv", stat: "4:1:1:10:1", hash: "00000000000000a1" },
            { path: "/data/é b.csv", stat: "5:2:2:11:1", hash: "00000000000000b1" }
          ]
        )
        yield* store.saveFingerprints([{ path: "/data/a.csv", stat: "4:9:9:10:1", hash: "00000000000000a2" }])
        assert.deepStrictEqual(yield* store.lookupFingerprints(["/data/a.csv"]), [
          { path: "/data/a.csv", stat: "4:9:9:10:1", hash: "00000000000000a2" }
        ])
        // Many paths of one tree (the SQLite store scans the tree's range): siblings sharing a
        // string prefix, names beyond the BMP and paths without a fingerprint are told apart.
        const tree = Array.from({ length: 40 }, (_, i) => `/data/tree/${i % 2 === 0 ? "😀" : "z"}${i}`)
        yield* store.saveFingerprints(
          tree.filter((_, i) => i % 4 !== 3).map((p) => ({ path: p, stat: "s", hash: "00000000000000c1" }))
        )
        yield* store.saveFingerprints([{ path: "/data/tree2/x", stat: "s", hash: "00000000000000c2" }])
        const inTree = yield* store.lookupFingerprints(tree)
        assert.deepStrictEqual(inTree.map((f) => f.path).sort(), tree.filter((_, i) => i % 4 !== 3).sort())
        assert.strictEqual((yield* store.lookupFingerprints([...tree, "/data/tree2/x"])).length, 31)
        // Fingerprints are not entries: they neither count nor go with clear.
        yield* store.upsert(record(key(1)))
        yield* store.clear
        assert.strictEqual((yield* store.totals).entries, 0)
        assert.strictEqual((yield* store.lookupFingerprints(["/data/a.csv", "/data/é b.csv"])).length, 2)
      })))

    it.scoped("path fingerprints: walked a page at a time in one order, deleted by path", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        assert.deepStrictEqual(yield* store.fingerprintPaths(null, 10), [])
        // Names that sort differently by locale, by UTF-16 and by bytes: each store keeps one order.
        const paths = ["/d/b", "/d/B", "/d/a", "/d/é", "/d/😀", "/d/\uffff", "/d/a/x", "/e", "/d/a b"]
        yield* store.saveFingerprints(paths.map((p) => ({ path: p, stat: "s", hash: "00000000000000d1" })))
        const walked: Array<string> = []
        let after: string | null = null
        for (let pages = 0; pages < 10; pages++) {
          const page: ReadonlyArray<string> = yield* store.fingerprintPaths(after, 2)
          walked.push(...page)
          if (page.length < 2) break
          after = page[page.length - 1]!
        }
        assert.deepStrictEqual([...walked].sort(), [...paths].sort(), "every path once")
        assert.deepStrictEqual(yield* store.fingerprintPaths(null, 100), walked, "pages follow the whole order")
        assert.strictEqual(yield* store.deleteFingerprints([]), 0)
        assert.strictEqual(yield* store.deleteFingerprints(["/d/a", "/d/😀", "/missing"]), 2)
        assert.deepStrictEqual(
          yield* store.lookupFingerprints(["/d/a", "/d/😀", "/d/b"]).pipe(Effect.map((f) => f.map((x) => x.path))),
          ["/d/b"]
        )
        assert.strictEqual((yield* store.fingerprintPaths(null, 100)).length, paths.length - 2)
      })))

    it.scoped("a lease has one holder until it expires or is released", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        assert.isTrue(yield* store.acquireLease(key(1), "a", 2_000, 1_000))
        assert.isFalse(yield* store.acquireLease(key(1), "b", 3_000, 1_500), "live lease of another holder")
        assert.isTrue(yield* store.acquireLease(key(2), "b", 3_000, 1_500), "leases are per key")
        assert.isTrue(yield* store.acquireLease(key(1), "a", 4_000, 1_900), "the holder renews")
        assert.isFalse(yield* store.acquireLease(key(1), "b", 5_000, 3_999), "renewed until 4000")
        yield* store.releaseLease(key(1), "b") // not the holder: nothing happens
        assert.isFalse(yield* store.acquireLease(key(1), "b", 5_000, 3_999))
        assert.isTrue(yield* store.acquireLease(key(1), "b", 6_000, 4_000), "expired: taken over")
        assert.isFalse(yield* store.acquireLease(key(1), "a", 7_000, 4_500), "the old holder lost it")
        yield* store.releaseLease(key(1), "b")
        assert.isTrue(yield* store.acquireLease(key(1), "c", 7_000, 4_500), "released: free")
      })))

    it.scoped("acquireLeaseIfAbsent, when provided, is acquireLease refused while a live entry is stored", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        const take = store.acquireLeaseIfAbsent
        // A store without the step answers null: `cached` then reads again under the lease.
        if (take === null) return
        assert.isTrue(yield* take(key(1), "a", 2_000, 1_000, 50), "nothing stored")
        assert.isFalse(yield* take(key(1), "b", 3_000, 1_500, 50), "live lease of another holder")
        assert.isTrue(yield* take(key(1), "a", 4_000, 1_900, 50), "the holder renews")
        yield* store.releaseLease(key(1), "a")
        yield* store.upsert(record(key(2), { expiresAt: 100 }))
        yield* store.upsert(record(key(3), { expiresAt: null }))
        assert.isFalse(yield* take(key(2), "a", 2_000, 1_000, 99), "stored, live until 100")
        assert.isFalse(yield* take(key(3), "a", 2_000, 1_000, 99), "stored, never expires")
        // Refused without taking it: any holder takes it at once.
        assert.isTrue(yield* store.acquireLease(key(2), "b", 2_000, 1_000), "refused: nothing was written")
        yield* store.releaseLease(key(2), "b")
        assert.isTrue(yield* take(key(2), "a", 2_000, 1_000, 100), "expired at 100")
        assert.isFalse(yield* take(key(2), "c", 2_000, 1_500, 100), "then held like any lease")
        yield* store.remove({ keys: [key(3)] })
        assert.isTrue(yield* take(key(3), "a", 2_000, 1_000, 99), "removed")
      })))

    it.scoped("leases are independent of entries", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1)))
        assert.isTrue(yield* store.acquireLease(key(1), "a", 2_000, 1_000))
        yield* store.clear
        assert.isFalse(yield* store.acquireLease(key(1), "b", 2_000, 1_000))
        assert.strictEqual((yield* store.totals).entries, 0)
      })))

    it.scoped("changeCount, when provided, moves on every write and only then", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        const count = store.changeCount
        // A store that cannot tell answers NotSync: then there is nothing to hold it to.
        if (count() === NotSync) return
        let last = count()
        const changed = () => {
          const now = count()
          const moved = now !== last
          last = now
          return moved
        }
        yield* store.upsert(record(key(1)))
        assert.isTrue(changed(), "upsert")
        yield* store.lookup(key(1))
        yield* store.probe(key(1))
        yield* store.recordAccess(key(1), 2_000)
        yield* store.flush
        yield* store.acquireLease(key(1), "a", 2_000, 1_000)
        assert.isFalse(changed(), "reads, access statistics and leases change no entry")
        yield* store.touch(key(1), 9_000, 1_000)
        assert.isTrue(changed(), "touch")
        yield* store.remove({ keys: [key(1)] })
        assert.isTrue(changed(), "remove")
        yield* store.upsert(record(key(2)))
        changed()
        yield* store.evict(1)
        assert.isTrue(changed(), "evict")
        yield* store.upsert(record(key(3)))
        changed()
        yield* store.clear
        assert.isTrue(changed(), "clear")
      })))

    it.scoped("namespaces are counted: entries and bytes per namespace through every change", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { namespace: "a", storedBytes: 100 }))
        yield* store.upsert(record(key(2), { namespace: "a", storedBytes: 200 }))
        yield* store.upsert(record(key(3), { namespace: "b", storedBytes: 7 }))
        yield* store.upsert(record(key(4), { storedBytes: 40 }))
        assert.deepStrictEqual(yield* store.namespaceTotals("a"), { entries: 2, totalBytes: 300 })
        assert.deepStrictEqual(yield* store.namespaceTotals("b"), { entries: 1, totalBytes: 7 })
        assert.deepStrictEqual(yield* store.namespaceTotals(""), { entries: 1, totalBytes: 40 })
        assert.deepStrictEqual(yield* store.namespaceTotals("none"), { entries: 0, totalBytes: 0 })
        // An overwrite moves the bytes, not the count.
        yield* store.upsert(record(key(2), { namespace: "a", storedBytes: 50 }))
        assert.deepStrictEqual(yield* store.namespaceTotals("a"), { entries: 2, totalBytes: 150 })
        yield* store.upsert(record(key(5), { namespace: "b", storedBytes: 13, blobId: `${key(5)}-x`, inline: null }))
        assert.deepStrictEqual(yield* store.namespaceTotals("b"), { entries: 2, totalBytes: 20 })
        // Removing one namespace leaves the others.
        const removed = yield* store.remove({ namespace: "a" })
        assert.deepStrictEqual(removed.map((r) => r.key).sort(), [key(1), key(2)])
        assert.deepStrictEqual(yield* store.namespaceTotals("a"), { entries: 0, totalBytes: 0 })
        assert.deepStrictEqual(yield* store.namespaceTotals("b"), { entries: 2, totalBytes: 20 })
        assert.deepStrictEqual(yield* store.namespaceTotals(""), { entries: 1, totalBytes: 40 })
        assert.deepStrictEqual((yield* store.list({ namespace: "b" })).map((r) => r.key), [key(3), key(5)])
        const recounted = yield* store.recount
        assert.strictEqual(recounted.entries, 3)
        assert.deepStrictEqual(yield* store.namespaceTotals("b"), { entries: 2, totalBytes: 20 })
        yield* store.clear
        assert.deepStrictEqual(yield* store.namespaceTotals("b"), { entries: 0, totalBytes: 0 })
        assert.deepStrictEqual(yield* store.namespaceTotals(""), { entries: 0, totalBytes: 0 })
      })))

    it.scoped("list is in insertion order: ties keep it, an overwrite keeps its place, a re-put goes last", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        // Keys deliberately out of key order, every time equal (one millisecond).
        const order = [5, 2, 9, 1, 7]
        for (const n of order) yield* store.upsert(record(key(n), { namespace: n % 2 === 0 ? "even" : "odd" }))
        const keys = (records: ReadonlyArray<EntryRecord>) => records.map((r) => r.key)
        assert.deepStrictEqual(keys(yield* store.list({})), order.map(key))
        // An overwrite keeps the entry's place.
        yield* store.upsert(record(key(2), { namespace: "even", storedBytes: 1 }))
        assert.deepStrictEqual(keys(yield* store.list({})), order.map(key))
        // Removed and put again: last.
        yield* store.remove({ keys: [key(9)] })
        yield* store.upsert(record(key(9), { namespace: "odd" }))
        const now = [5, 2, 1, 7, 9].map(key)
        assert.deepStrictEqual(keys(yield* store.list({})), now)
        assert.deepStrictEqual(keys(yield* store.list({ descending: true })), [...now].reverse())
        assert.deepStrictEqual(keys(yield* store.list({ orderBy: "createdAt" })), now)
        assert.deepStrictEqual(keys(yield* store.list({ orderBy: "createdAt", descending: true })), [...now].reverse())
        assert.deepStrictEqual(keys(yield* store.list({ limit: 2, offset: 1 })), now.slice(1, 3))
        assert.deepStrictEqual(keys(yield* store.list({ orderBy: "createdAt", limit: 2, offset: 2 })), now.slice(2, 4))
        assert.deepStrictEqual(keys(yield* store.list({ namespace: "odd" })), [5, 1, 7, 9].map(key))
        assert.deepStrictEqual(
          (yield* store.listEntries({ namespace: "odd" })).map((e) => e.key),
          [5, 1, 7, 9].map(key)
        )
        // orderBy still orders; ties in insertion order.
        assert.deepStrictEqual(keys(yield* store.list({ orderBy: "storedBytes" })), [2, 5, 1, 7, 9].map(key))
        assert.deepStrictEqual(keys(yield* store.list({ orderBy: "key" })), [1, 2, 5, 7, 9].map(key))
      })))

    it.scoped("lookupMany and probeMany answer in the order asked, None for an absent key", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { description: "one" }))
        yield* store.upsert(record(key(2), { blobId: `${key(2)}-b`, inline: null, storedBytes: 900 }))
        const asked = [key(2), key(9), key(1), key(2)]
        const looked = yield* store.lookupMany(asked)
        assert.deepStrictEqual(looked.map((r) => Option.map(r, (x) => x.key)), [
          Option.some(key(2)),
          Option.none(),
          Option.some(key(1)),
          Option.some(key(2))
        ])
        const one = Option.getOrThrow(looked[2])
        assert.strictEqual(one.description, "one")
        assert.deepStrictEqual(Array.from(one.inline!), [1, 2, 3])
        const probed = yield* store.probeMany(asked)
        assert.deepStrictEqual(probed.map((r) => Option.map(r, (x) => [x.key, x.blobId, x.storedBytes])), [
          Option.some([key(2), `${key(2)}-b`, 900]),
          Option.none(),
          Option.some([key(1), null, 100]),
          Option.some([key(2), `${key(2)}-b`, 900])
        ])
        assert.deepStrictEqual(yield* store.lookupMany([]), [])
      })))

    it.scoped("unsafeUpsert answers what upsert would, or NotSync having written nothing", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { blobId: `${key(1)}-old`, inline: null, storedBytes: 500 }))
        const written = store.unsafeUpsert(record(key(1), { storedBytes: 40 }))
        if (written === NotSync) {
          assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).storedBytes, 500, "NotSync wrote nothing")
          return
        }
        assert.notInstanceOf(written, Error)
        assert.deepStrictEqual(written, { replacedBlobId: `${key(1)}-old`, totalBytes: 40 })
        const fresh = store.unsafeUpsert(record(key(2), { storedBytes: 60 }))
        assert.deepStrictEqual(fresh, { replacedBlobId: null, totalBytes: 100 })
        const totals = yield* store.totals
        assert.deepStrictEqual([totals.entries, totals.totalBytes], [2, 100])
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).blobId, null)
      })))

    it.scoped("upsertMany writes every entry and reports replaced blobs, a key given twice included", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { blobId: `${key(1)}-old`, inline: null, storedBytes: 500 }))
        const result = yield* store.upsertMany([
          { record: record(key(1), { blobId: `${key(1)}-new`, inline: null, storedBytes: 300 }) },
          { record: record(key(2), { blobId: `${key(2)}-first`, inline: null, storedBytes: 50 }) },
          { record: record(key(3), { storedBytes: 10 }) },
          { record: record(key(2), { storedBytes: 20 }) }
        ])
        assert.deepStrictEqual([...result.replacedBlobIds].sort(), [`${key(1)}-old`, `${key(2)}-first`])
        assert.strictEqual(result.totalBytes, 330)
        const totals = yield* store.totals
        assert.deepStrictEqual([totals.entries, totals.totalBytes], [3, 330])
        const two = Option.getOrThrow(yield* store.lookup(key(2)))
        assert.deepStrictEqual([two.blobId, two.storedBytes], [null, 20])
        assert.deepStrictEqual(yield* store.upsertMany([]), { replacedBlobIds: [], totalBytes: 330 })
      })))

    it.scoped("unsafeUpsertMany answers what upsertMany would, or NotSync having written nothing", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { blobId: `${key(1)}-old`, inline: null, storedBytes: 500 }))
        // More entries than a store's chunk; key 1 first with a blob of its own, and again last.
        const items = Array.from({ length: 600 }, (_, i) => ({ record: record(key(i + 1), { storedBytes: 10 }) }))
        items[0] = { record: record(key(1), { blobId: `${key(1)}-first`, inline: null, storedBytes: 10 }) }
        items.push({ record: record(key(1), { storedBytes: 10 }) })
        let made = 0
        const abandoned = store.unsafeUpsertMany(items.length, (i) => (made++, i === 550 ? NotSync : items[i]))
        assert.strictEqual(abandoned, NotSync)
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).blobId, `${key(1)}-old`)
        assert.isTrue(Option.isNone(yield* store.lookup(key(2))))
        const before = yield* store.totals
        assert.deepStrictEqual([before.entries, before.totalBytes], [1, 500])
        const written = store.unsafeUpsertMany(items.length, (i) => items[i])
        if (written === NotSync) {
          assert.strictEqual(made, 0, "a store that cannot write synchronously makes no entry")
          return
        }
        assert.notInstanceOf(written, Error)
        assert.deepStrictEqual([...(written as any).replacedBlobIds].sort(), [`${key(1)}-first`, `${key(1)}-old`])
        assert.strictEqual((written as any).totalBytes, 6000)
        const totals = yield* store.totals
        assert.deepStrictEqual([totals.entries, totals.totalBytes], [600, 6000])
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).blobId, null)
        const failed = store.unsafeUpsertMany(3, (i) =>
          i < 2
            ? { record: record(key(i + 1), { description: "after" }) }
            : { record: record(key(900)), rows: [{ table: "no_such_table", row: {} }] })
        assert.strictEqual((failed as any)._tag, "MetadataError")
        assert.strictEqual((failed as any).reason, "UnknownTable")
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).description, null)
        assert.isTrue(Option.isNone(yield* store.lookup(key(900))))
      })))

    it.scoped("upsertMany is all or nothing: a failing entry leaves every entry as it was", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { description: "before", tags: ["kept"] }))
        const error = yield* Effect.flip(store.upsertMany([
          { record: record(key(1), { description: "after", tags: ["new"] }) },
          { record: record(key(2), { tags: ["new"] }) },
          { record: record(key(3)), rows: [{ table: "no_such_table", row: {} }] }
        ]))
        assert.strictEqual(error._tag, "MetadataError")
        assert.strictEqual(error.reason, "UnknownTable")
        assert.strictEqual(Option.getOrThrow(yield* store.lookup(key(1))).description, "before")
        assert.isTrue(Option.isNone(yield* store.lookup(key(2))))
        assert.isTrue(Option.isNone(yield* store.lookup(key(3))))
        const totals = yield* store.totals
        assert.deepStrictEqual([totals.entries, totals.totalBytes], [1, 100])
        assert.deepStrictEqual((yield* store.list({ tag: "new" })).length, 0)
        assert.deepStrictEqual((yield* store.list({ tag: "kept" })).map((r) => r.key), [key(1)])
      })))

    it.scoped("tags: stored with the entry, listed and removed through the index", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { tags: ["a", "b"], createdAt: 1 }))
        yield* store.upsert(record(key(2), { tags: ["b"], createdAt: 2, blobId: "blob-2", inline: null }))
        yield* store.upsert(record(key(3), { tags: ["c"], createdAt: 3 }))
        yield* store.upsert(record(key(4), { createdAt: 4 }))
        assert.deepStrictEqual(Option.getOrThrow(yield* store.lookup(key(1))).tags, ["a", "b"])
        assert.deepStrictEqual(Option.getOrThrow(yield* store.lookup(key(4))).tags ?? [], [])
        assert.deepStrictEqual((yield* store.list({ tag: "b" })).map((r) => r.key), [key(1), key(2)])
        assert.deepStrictEqual((yield* store.list({ tag: "b", limit: 1, offset: 1 })).map((r) => r.key), [key(2)])
        assert.deepStrictEqual((yield* store.list({ tag: "zzz" })).length, 0)
        const entries = yield* store.listEntries({})
        assert.deepStrictEqual(entries.map((e) => e.tags), [["a", "b"], ["b"], ["c"], []])
        const removed = yield* store.remove({ tags: ["b", "c"] })
        assert.deepStrictEqual(removed.map((r) => [r.key, r.blobId]).sort(), [
          [key(1), null],
          [key(2), "blob-2"],
          [key(3), null]
        ])
        assert.deepStrictEqual((yield* store.list({})).map((r) => r.key), [key(4)])
        assert.strictEqual((yield* store.removeCounted({ tags: ["a"] })).removed, 0)
      })))

    it.scoped("tags: index rows go with their entry (overwrite, remove, evict, clear)", () =>
      run(Effect.gen(function*() {
        const store = yield* MetadataStore
        yield* store.upsert(record(key(1), { tags: ["t"], accessedAt: 1 }))
        // Overwritten without the tag: no longer carries it.
        yield* store.upsert(record(key(1), { tags: ["u"], accessedAt: 1 }))
        assert.deepStrictEqual((yield* store.list({ tag: "t" })).length, 0)
        assert.deepStrictEqual(Option.getOrThrow(yield* store.lookup(key(1))).tags, ["u"])
        yield* store.upsert(record(key(1), { accessedAt: 1 }))
        assert.deepStrictEqual((yield* store.list({ tag: "u" })).length, 0)
        // Removed, then stored again untagged: the old index rows must not select it.
        yield* store.upsert(record(key(2), { tags: ["t"], accessedAt: 2 }))
        yield* store.remove({ keys: [key(2)] })
        yield* store.upsert(record(key(2), { accessedAt: 2 }))
        assert.strictEqual((yield* store.remove({ tags: ["t"] })).length, 0)
        // Evicted and cleared entries leave no index rows either.
        yield* store.upsert(record(key(3), { tags: ["e"], accessedAt: 0 }))
        yield* store.evict(1)
        yield* store.upsert(record(key(3), { accessedAt: 5 }))
        assert.strictEqual((yield* store.remove({ tags: ["e"] })).length, 0)
        yield* store.upsert(record(key(4), { tags: ["c"], accessedAt: 6 }))
        yield* store.clear
        yield* store.upsert(record(key(4), { accessedAt: 6 }))
        assert.strictEqual((yield* store.remove({ tags: ["c"] })).length, 0)
        assert.strictEqual((yield* store.totals).entries, 1)
        // Tags combine with the other conditions of a filter.
        yield* store.upsert(record(key(5), { tags: ["x"], namespace: "n" }))
        yield* store.upsert(record(key(6), { tags: ["x"], namespace: "m" }))
        assert.deepStrictEqual((yield* store.remove({ tags: ["x"], namespace: "n" })).map((r) => r.key), [key(5)])
      })))
  })
}
