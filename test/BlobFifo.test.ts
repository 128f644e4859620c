// A FIFO (or any non-regular file) planted under a blob's name must not hang a read: before the
// fix, `open` blocked forever on a libuv thread, and four such reads stalled every file operation
// of the process. Now the blob is opened non-blocking and checked with fstat: a broken entry (a
// miss, the entry removed, a warning), reported and repaired by `verify`.
import { assert, describe, it } from "@effect/vitest"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import { BlobStore } from "../src/blob/service.js"
import * as Cache from "../src/Cache.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { captureWarnings } from "./support/logs.js"
import { listFiles, tempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null, defaultTtl: null } as const

/** More FIFOs than libuv has threads (4 by default): each blocked open would take one. */
const FIFOS = 6

/** Replaces each file with a FIFO of the same name. */
const plantFifos = (files: ReadonlyArray<string>) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      for (const file of files) {
        fs.rmSync(file)
        execFileSync("mkfifo", [file])
      }
    }),
    // Without the fix, readers are stuck in `open`: a writer opening each FIFO lets them go, so a
    // failing run does not leave the thread pool blocked for the tests after it.
    () =>
      Effect.sync(() => {
        for (const file of files) {
          try {
            fs.closeSync(fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_NONBLOCK))
          } catch {
            // no reader waiting, or removed
          }
        }
      })
  )

/** Fails instead of hanging. */
const within = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.timeoutFail(self, { duration: "5 seconds", onTimeout: () => new Error("timed out: a read hung on a FIFO") })

const blobPaths = (directory: string) =>
  listFiles(path.join(directory, "blobs")).map((f) => path.join(directory, "blobs", f))

const isFifo = (file: string) => {
  try {
    return fs.lstatSync(file).isFIFO()
  } catch {
    return false
  }
}

describe("blob files that are FIFOs", () => {
  it.scoped(`BlobStore.get of ${FIFOS} FIFOs at once: None for each, without hanging`, () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      const ids = Array.from({ length: FIFOS }, (_, i) => `${i.toString(16).padStart(16, "0")}-v1`)
      for (const id of ids) yield* store.put(id, new Uint8Array([1, 2, 3]))
      yield* store.put("ffffffffffffffff-v1", new Uint8Array([4, 5]))
      yield* plantFifos(ids.map((id) => path.join(directory, id.slice(0, 2), id.slice(2, 4), id)))
      const results = yield* within(Effect.forEach(ids, (id) => store.get(id), { concurrency: "unbounded" }))
      assert.deepStrictEqual(results, ids.map(() => Option.none()))
      // The thread pool is not exhausted: other file operations still complete.
      assert.deepStrictEqual(yield* within(store.get("ffffffffffffffff-v1")), Option.some(new Uint8Array([4, 5])))
      yield* within(Effect.promise(() => fs.promises.readdir(directory)))
    }))

  it.scoped("get: a miss, the entry and the FIFO removed, a warning; other entries still served", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const context = yield* Layer.build(Cache.layer({ directory, ...quiet }))
      const cache = Context.get(context, Cache.Cache)
      const values = Array.from({ length: FIFOS + 1 }, (_, i) => incompressible(20_000 + i))
      for (let i = 0; i < values.length; i++) yield* cache.put({ k: i }, values[i])
      const blobs = blobPaths(directory)
      assert.strictEqual(blobs.length, FIFOS + 1)
      const kept = yield* cache.key({ k: FIFOS })
      const keep = blobs.find((file) => path.basename(file).startsWith(kept))!
      const planted = blobs.filter((file) => file !== keep)
      yield* plantFifos(planted)
      const { result, warnings } = yield* captureWarnings(
        within(Effect.forEach(values, (_, i) => cache.get({ k: i }), { concurrency: "unbounded" }))
      )
      const hits = result.filter(Option.isSome).map((hit) => hit.value)
      assert.deepStrictEqual(hits, [values[FIFOS]], "only the entry whose blob is still a file is served")
      assert.strictEqual(warnings.length, FIFOS)
      for (const warning of warnings) assert.include(warning, "removed, treated as a miss")
      assert.strictEqual((yield* cache.stats()).entries, 1)
      assert.isFalse(planted.some(isFifo), "the FIFOs were removed with their entries")
    }))

  it.scoped("verify reports each FIFO as dangling without hanging; repair removes them", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const context = yield* Layer.build(Cache.layer({ directory, ...quiet }))
      const cache = Context.get(context, Cache.Cache)
      for (let i = 0; i < FIFOS; i++) yield* cache.put({ k: i }, incompressible(20_000 + i))
      yield* cache.put({ k: "inline" }, "small")
      const planted = blobPaths(directory)
      yield* plantFifos(planted)
      const report = yield* within(cache.verify())
      assert.strictEqual(report.checked, FIFOS + 1)
      assert.strictEqual(report.dangling.length, FIFOS)
      assert.strictEqual(report.repaired, 0)
      const repaired = yield* within(cache.verify({ repair: true }))
      assert.strictEqual(repaired.repaired, FIFOS)
      assert.isFalse(planted.some(isFifo))
      const after = yield* within(cache.verify())
      assert.deepStrictEqual([after.checked, after.dangling, after.orphans], [1, [], []])
      assert.deepStrictEqual(yield* cache.get({ k: "inline" }), Option.some("small"))
    }))
})
