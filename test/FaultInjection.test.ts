// Fault injection: the blob store runs on a FileSystem that fails chosen operations with ENOSPC,
// EACCES or EIO (a disk-full write leaves half a file behind, as a real one does), and the
// metadata store meets a database locked by another process beyond its busy timeout. Each fault
// must surface as a typed error, leave no temp or partial file, keep metadata consistent (the
// previous value still served, counters equal to the rows), and a transient read error must not
// cost the entry.
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import { BlobStore, StorageError } from "../src/blob/service.js"
import { resolveConfig } from "../src/cache/config.js"
import * as CacheLayer from "../src/cache/make.js"
import type { Cache, CacheError } from "../src/cache/service.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { captureWarnings } from "./support/logs.js"
import { listFiles, tempDir } from "./support/tmp.js"

type Code = "ENOSPC" | "EACCES" | "EIO"
type Operation = "writeFile" | "rename" | "read" | "remove" | "makeDirectory"

/** Which operation fails next, with which errno; `partial` writes half the bytes first. */
interface Faults {
  fail: Partial<Record<Operation, Code>>
  partial: boolean
  /** Operations actually failed, for asserting the fault was hit. */
  hits: Array<Operation>
}

const errno = (code: Code, method: Operation, file: string) =>
  new SystemError({
    reason: code === "EACCES" ? "PermissionDenied" : "Unknown",
    module: "FileSystem",
    method,
    pathOrDescriptor: file,
    description: `${code}: injected fault`,
    cause: Object.assign(new Error(`${code}: injected fault, ${method} '${file}'`), {
      code,
      syscall: method,
      path: file
    })
  })

/** Node's FileSystem with the operations named in `faults.fail` failing. */
const faultyFileSystem = (faults: Faults) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (real): FileSystem.FileSystem => {
      const gate = <A, E, R>(
        op: Operation,
        file: string,
        run: () => Effect.Effect<A, E, R>
      ): Effect.Effect<A, E | SystemError, R> =>
        Effect.suspend((): Effect.Effect<A, E | SystemError, R> => {
          const code = faults.fail[op]
          if (code === undefined) return run()
          faults.hits.push(op)
          return Effect.fail(errno(code, op, file))
        })
      return {
        ...real,
        writeFile: (file, bytes, options) =>
          faults.partial && faults.fail.writeFile !== undefined
            ? Effect.zipRight(
              real.writeFile(file, bytes.subarray(0, bytes.length >> 1), options),
              gate("writeFile", file, () => Effect.void)
            )
            : gate("writeFile", file, () => real.writeFile(file, bytes, options)),
        rename: (from, to) => gate("rename", from, () => real.rename(from, to)),
        remove: (file, options) => gate("remove", file, () => real.remove(file, options)),
        makeDirectory: (dir, options) => gate("makeDirectory", dir, () => real.makeDirectory(dir, options))
      }
    })
  ).pipe(Layer.provide(NodeFileSystem.layer))

/**
 * Blobs are opened with Node's `fs` (non-blocking, which `FileSystem` cannot ask for), so a read
 * fault is injected at the store: the `StorageError` its `get` gives for that errno.
 */
const faultyReads = (store: BlobStore.Service, faults: Faults): BlobStore.Service => ({
  ...store,
  // A wrapper that changes `get` drops `getPlaced`, which would read past it.
  getPlaced: undefined,
  get: (id) =>
    Effect.suspend(() => {
      const code = faults.fail.read
      if (code === undefined) return store.get(id)
      faults.hits.push("read")
      const cause = errno(code, "read", id)
      return Effect.fail(
        new StorageError({ reason: "ReadFailed", method: "BlobStore.get", id, description: cause.message, cause })
      )
    })
})

/** A cache on the real services, except a faulty file system under the blobs and a short busy timeout. */
const faultyCache = (directory: string, faults: Faults) =>
  Effect.gen(function*() {
    const config = yield* resolveConfig({
      directory,
      maxSize: null,
      cleanupOnOpen: false,
      cleanupInterval: "100000 days"
    }, { memory: false })
    // Built in the caller's scope: the services live as long as the test.
    const services = yield* Layer.build(Layer.mergeAll(
      HasherXxhash.layer,
      CodecDefault.layer(),
      Layer.effect(
        BlobStore,
        Effect.map(
          BlobStoreFileSystem.make({ directory: path.join(directory, "blobs") }),
          (store) => faultyReads(store, faults)
        )
      )
        .pipe(Layer.provide(faultyFileSystem(faults))),
      MetadataStoreSqlite.layer({ filename: path.join(directory, "cacheness.db"), busyTimeout: "150 millis" })
    ))
    return yield* Effect.provide(CacheLayer.make(config), services)
  })

/** Files under the directory other than the database; a temp file starts with "." */
const blobFiles = (directory: string) => listFiles(path.join(directory, "blobs"))

/** Counters equal the rows, and every blob on disk belongs to an entry. */
const assertConsistent = (directory: string, cache: Cache.Service) =>
  Effect.gen(function*() {
    const db = new Database(path.join(directory, "cacheness.db"), { readonly: true })
    try {
      const actual = db.prepare(
        "SELECT count(*) AS entries, coalesce(sum(stored_bytes), 0) AS bytes FROM cacheness_entries"
      ).get()
      assert.deepStrictEqual(
        db.prepare(
          // The counters row counts the rows up to its mark, the rows above it are added on reading.
          "SELECT c.entries + (SELECT count(*) FROM cacheness_entries WHERE rowid > c.counted_through) AS entries, " +
            "c.bytes + (SELECT coalesce(sum(stored_bytes), 0) FROM cacheness_entries WHERE rowid > c.counted_through) AS bytes " +
            "FROM cacheness_counters c"
        ).get(),
        actual
      )
      const referenced =
        (db.prepare("SELECT blob_id FROM cacheness_entries WHERE blob_id IS NOT NULL").pluck().all() as Array<string>)
          .sort()
      assert.deepStrictEqual(
        blobFiles(directory).map((f) => path.basename(f)).sort(),
        referenced,
        "no temp, partial or orphan file"
      )
    } finally {
      db.close()
    }
    const report = yield* cache.verify()
    assert.deepStrictEqual([report.orphans, report.dangling, report.sizeMismatches, report.checksumMismatches], [
      [],
      [],
      [],
      []
    ])
  })

const newFaults = (): Faults => ({ fail: {}, partial: false, hits: [] })

describe("fault injection: blob file system", () => {
  const writeFaults: ReadonlyArray<readonly [string, Partial<Record<Operation, Code>>, boolean, string]> = [
    ["disk full mid-write (half a temp file written)", { writeFile: "ENOSPC" }, true, "NoSpace"],
    ["permission denied on write", { writeFile: "EACCES" }, false, "PermissionDenied"],
    ["I/O error on rename", { rename: "EIO" }, false, "WriteFailed"],
    ["disk full creating a shard directory", { makeDirectory: "ENOSPC" }, false, "NoSpace"]
  ]
  for (const [name, fail, partial, reason] of writeFaults) {
    it.scoped(`${name}: a StorageError (${reason}), the old value kept, no stray file`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const faults = newFaults()
        const cache = yield* faultyCache(directory, faults)
        const old = incompressible(30_000)
        yield* cache.put({ k: "overwritten" }, old)
        yield* cache.put({ k: "inline" }, { small: true })
        const entries = (yield* cache.stats()).entries
        faults.fail = fail
        faults.partial = partial
        for (const key of [{ k: "overwritten" }, { k: "new" }]) {
          // A new shard needs a directory; the "overwritten" shard already exists.
          if (fail.makeDirectory !== undefined && key.k === "overwritten") continue
          const error = yield* Effect.flip(cache.put(key, incompressible(40_000)))
          assert.strictEqual(error._tag, "StorageError")
          assert.strictEqual((error as any).reason, reason)
          assert.include(error.message, "injected fault")
        }
        assert.isAbove(faults.hits.length, 0, "the fault was hit")
        // Inline values do not touch the blob store.
        yield* cache.put({ k: "inline" }, { small: "still works" })
        faults.fail = {}
        assert.deepStrictEqual(yield* cache.get({ k: "overwritten" }), Option.some(old))
        assert.isTrue(Option.isNone(yield* cache.get({ k: "new" })))
        assert.strictEqual((yield* cache.stats()).entries, entries)
        yield* assertConsistent(directory, cache)
        // And the store recovers once the fault is gone.
        yield* cache.put({ k: "new" }, "after")
        assert.deepStrictEqual(yield* cache.get({ k: "new" }), Option.some("after"))
      }))
  }

  it.scoped("a transient read error (EIO) is a typed error and keeps the entry", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const faults = newFaults()
      const cache = yield* faultyCache(directory, faults)
      const value = incompressible(30_000)
      yield* cache.put({ k: 1 }, value)
      faults.fail = { read: "EIO" }
      const { result: error, warnings } = yield* captureWarnings(Effect.flip(cache.get({ k: 1 })))
      assert.strictEqual(error._tag, "StorageError")
      assert.strictEqual((error as any).reason, "ReadFailed")
      assert.deepStrictEqual(warnings, [], "not reported as a broken entry")
      const verifyError = yield* Effect.flip(cache.verify({ repair: true }))
      assert.strictEqual(verifyError._tag, "StorageError", "verify does not repair what it could not read")
      faults.fail = {}
      assert.isTrue(yield* cache.has({ k: 1 }))
      assert.deepStrictEqual(yield* cache.get({ k: 1 }), Option.some(value))
      yield* assertConsistent(directory, cache)
    }))

  it.scoped("a failed blob delete (EIO) after invalidate and overwrite: the operation succeeds, the orphan is reported and repaired", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const faults = newFaults()
      const cache = yield* faultyCache(directory, faults)
      yield* cache.put({ k: 1 }, incompressible(30_000))
      yield* cache.put({ k: 2 }, incompressible(30_000))
      faults.fail = { remove: "EIO" }
      const { result, warnings } = yield* captureWarnings(
        Effect.all([cache.invalidate({ k: 1 }), cache.put({ k: 2 }, "small now")])
      )
      assert.isTrue(result[0])
      assert.strictEqual(warnings.filter((w) => w.includes("could not delete blob")).length, 2)
      assert.isTrue(Option.isNone(yield* cache.get({ k: 1 })))
      assert.deepStrictEqual(yield* cache.get({ k: 2 }), Option.some("small now"))
      faults.fail = {}
      // Older than the grace period of a put in flight (its row not committed yet).
      const longAgo = new Date(Date.now() - 2 * 3600_000)
      for (const file of blobFiles(directory)) fs.utimesSync(path.join(directory, "blobs", file), longAgo, longAgo)
      const report = yield* cache.verify()
      assert.strictEqual(report.orphans.length, 2)
      assert.deepStrictEqual([report.dangling, report.sizeMismatches, report.checksumMismatches], [[], [], []])
      assert.strictEqual((yield* cache.verify({ repair: true })).repaired, 2)
      yield* assertConsistent(directory, cache)
    }))
})

describe("fault injection: metadata database", () => {
  it.scoped("locked by another process beyond the busy timeout: a MetadataError (Busy), no orphan blob, reads still served", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const cache = yield* faultyCache(directory, newFaults())
      const old = incompressible(30_000)
      yield* cache.put({ k: "blob" }, old)
      yield* cache.put({ k: "inline" }, "old")
      const locker = new Database(path.join(directory, "cacheness.db"))
      locker.pragma("busy_timeout = 0")
      locker.exec("BEGIN EXCLUSIVE")
      try {
        for (
          const attempt of <Array<Effect.Effect<unknown, CacheError>>> [
            cache.put({ k: "blob" }, incompressible(40_000)),
            cache.put({ k: "inline" }, "new"),
            cache.put({ k: "fresh" }, incompressible(40_000)),
            cache.invalidate({ k: "inline" }),
            cache.touch({ k: "inline" }, "1 hour")
          ]
        ) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error._tag, "MetadataError")
          assert.strictEqual((error as any).reason, "Busy")
        }
        // WAL: readers are not blocked by a writer.
        assert.deepStrictEqual(yield* cache.get({ k: "blob" }), Option.some(old))
        assert.deepStrictEqual(yield* cache.get({ k: "inline" }), Option.some("old"))
        assert.strictEqual(blobFiles(directory).length, 1, "the blobs of failed puts were removed")
      } finally {
        locker.exec("ROLLBACK")
        locker.close()
      }
      assert.deepStrictEqual(yield* cache.get({ k: "inline" }), Option.some("old"))
      assert.isTrue(Option.isNone(yield* cache.get({ k: "fresh" })))
      yield* assertConsistent(directory, cache)
      yield* cache.put({ k: "inline" }, "new")
      assert.deepStrictEqual(yield* cache.get({ k: "inline" }), Option.some("new"))
    }))

  it.scoped("a database file that cannot be opened is a MetadataError naming the file", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      // A directory where the database file should be: SQLite cannot open it.
      const fs = yield* Effect.promise(() => import("node:fs"))
      fs.mkdirSync(path.join(directory, "cacheness.db"))
      const error = yield* Effect.flip(faultyCache(directory, newFaults()))
      assert.strictEqual(error._tag, "MetadataError")
      assert.match(error.message, /open/i)
    }))
})
