/**
 * A memoised miss through the Promise API runs on the client's runtime, which provides `Cache`
 * itself (the facade no longer provides it per call). What the miss guarantees must hold there:
 * one computation per key across caches sharing a directory (the lease, taken before the function
 * runs and freed with the result), across the first concurrent calls of a client that has not
 * opened yet, and typed rejections stored only when asked, replayed as themselves.
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { cacheness } from "../src/promise.js"
import { tempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null } as const

/** The lease rows as another connection sees them. */
const leasesOf = (directory: string): Array<{ key: string; holder: string }> => {
  const db = new Database(path.join(directory, "cacheness.db"), { readonly: true })
  try {
    return db.prepare("SELECT key, holder FROM cacheness_leases").all() as any
  } finally {
    db.close()
  }
}

/** A promise and the function that settles it. */
const gate = () => {
  let open!: () => void
  const opened = new Promise<void>((resolve) => (open = resolve))
  return { open, opened }
}

describe("Promise memoize, a miss", () => {
  it.live("holds the lease while computing: a second cache on the directory waits for the value", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const first = cacheness({ ...quiet, directory })
      const second = cacheness({ ...quiet, directory })
      yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([first.close(), second.close()])))
      const runs: Array<string> = []
      const started = gate()
      const release = gate()
      const make = (client: typeof first, who: string) =>
        client.memoize(async (id: number) => {
          runs.push(who)
          started.open()
          await release.opened
          return { id, by: who }
        }, { name: "load", ttl: "1 hour" })
      const fromFirst = make(first, "first")
      const fromSecond = make(second, "second")
      // Both clients open before the race, so each call goes the way a warm client's does.
      yield* Effect.promise(() => Promise.all([first.has({ open: 1 }), second.has({ open: 1 })]))
      const a = fromFirst(7)
      yield* Effect.promise(() => started.opened)
      assert.strictEqual(leasesOf(directory).length, 1, "the lease is taken before the function runs")
      const b = fromSecond(7)
      // The second cache has no in-flight entry of its own for the key: only the lease keeps it waiting.
      yield* Effect.sleep("50 millis")
      release.open()
      const [va, vb] = yield* Effect.promise(() => Promise.all([a, b]))
      assert.deepStrictEqual(va, { id: 7, by: "first" })
      assert.deepStrictEqual(vb, { id: 7, by: "first" })
      assert.deepStrictEqual(runs, ["first"])
      assert.deepStrictEqual(leasesOf(directory), [], "the lease is freed with the result")
    }).pipe(Effect.scoped))

  it.live("the first calls of a client not yet open share one computation", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const client = cacheness({ ...quiet, directory })
      yield* Effect.addFinalizer(() => Effect.promise(() => client.close()))
      let runs = 0
      const square = client.memoize(async (n: number) => {
        runs++
        await new Promise((r) => setTimeout(r, 20))
        return n * n
      }, { name: "square" })
      const values = yield* Effect.promise(() => Promise.all([square(3), square(3), square(3)]))
      assert.deepStrictEqual(values, [9, 9, 9])
      assert.strictEqual(runs, 1)
      assert.strictEqual(yield* Effect.promise(() => square(3)), 9)
      assert.strictEqual(runs, 1)
      assert.deepStrictEqual(leasesOf(directory), [])
    }).pipe(Effect.scoped))

  it.live("a rejection is the function's own, stored only with cacheFailures, replayed to another cache", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const first = cacheness({ ...quiet, directory })
      const second = cacheness({ ...quiet, directory })
      yield* Effect.addFinalizer(() => Effect.promise(() => Promise.all([first.close(), second.close()])))
      let runs = 0
      const thrown = new RangeError("no such id")
      const options = (cacheFailures: boolean) => ({ name: cacheFailures ? "stored" : "plain", cacheFailures })
      const plain = first.memoize(async (_id: number) => {
        runs++
        throw thrown
      }, options(false))
      assert.strictEqual(yield* Effect.promise(() => plain(1).catch((e) => e)), thrown, "the same object")
      assert.strictEqual(yield* Effect.promise(() => plain(1).catch((e) => e)), thrown)
      assert.strictEqual(runs, 2, "not stored")
      const make = (client: typeof first) =>
        client.memoize(async (_id: number) => {
          runs++
          throw { status: 404 }
        }, options(true))
      assert.deepStrictEqual(yield* Effect.promise(() => make(first)(1).catch((e) => e)), { status: 404 })
      assert.deepStrictEqual(yield* Effect.promise(() => make(second)(1).catch((e) => e)), { status: 404 })
      assert.strictEqual(runs, 3, "stored once, replayed from the store")
      assert.deepStrictEqual(leasesOf(directory), [])
    }).pipe(Effect.scoped))
})
