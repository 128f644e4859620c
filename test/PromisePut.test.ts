/**
 * The Promise `put` of a small value on SQLite runs without a fiber (`unsafePut`): the row is
 * written in the call itself. What the fiber did must still happen — a replaced blob deleted, the
 * size limit enforced, the memory tier told, failures as typed rejections — and anything the
 * synchronous path cannot do (a blob, a schema, a path key) still goes the effectful way.
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schema from "effect/Schema"
import * as Supervisor from "effect/Supervisor"
import * as fs from "node:fs"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import * as Cache from "../src/Cache.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { cacheness, fromLayer } from "../src/promise.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { listFiles, makeTempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null } as const

/** Counts the fibers started under it. */
class CountingSupervisor extends Supervisor.AbstractSupervisor<void> {
  started = 0
  get value() {
    return Effect.void
  }
  override onStart() {
    this.started++
  }
}

const blobFiles = (directory: string) => listFiles(path.join(directory, "blobs")).filter((f) => !f.startsWith("."))

/** The rows as another connection sees them. */
const rowsOf = (directory: string): Array<{ key: string; blob_id: string | null }> => {
  const db = new Database(path.join(directory, "cacheness.db"), { readonly: true })
  try {
    return db.prepare("SELECT key, blob_id FROM cacheness_entries ORDER BY rowid").all() as any
  } finally {
    db.close()
  }
}

describe("Promise put without a fiber", () => {
  it("a small put starts no fiber and its row is committed before the call returns", async () => {
    const directory = makeTempDir()
    const supervisor = new CountingSupervisor()
    const client = fromLayer(Layer.merge(Cache.layer({ ...quiet, directory }), Supervisor.addSupervisor(supervisor)))
    try {
      await client.put({ warm: 1 }, "up")
      const before = supervisor.started
      const pending: Array<Promise<unknown>> = []
      for (let i = 0; i < 20; i++) pending.push(client.put({ user: i }, { id: i, name: `user-${i}` }))
      // Not awaited yet: another connection already sees the 20 rows.
      assert.strictEqual(rowsOf(directory).length, 21)
      assert.strictEqual(supervisor.started - before, 0, "no fiber per put")
      const keys = await Promise.all(pending)
      assert.deepStrictEqual(keys, await Promise.all(Array.from({ length: 20 }, (_, i) => client.key({ user: i }))))
      for (let i = 0; i < 20; i++) assert.deepStrictEqual(await client.get({ user: i }), { id: i, name: `user-${i}` })
      // A value with a blob still takes the effectful path (a fiber), and is stored.
      const big = incompressible(40_000)
      await client.put({ big: 1 }, big)
      assert.isAbove(supervisor.started - before, 0)
      assert.deepStrictEqual(await client.get({ big: 1 }), big)
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it("an inline overwrite of a blob-sized value deletes the old blob", async () => {
    const directory = makeTempDir()
    const client = cacheness({ ...quiet, directory })
    try {
      await client.put({ k: 1 }, incompressible(40_000))
      assert.strictEqual(blobFiles(directory).length, 1)
      await client.put({ k: 1 }, "small now")
      assert.strictEqual(await client.get({ k: 1 }), "small now")
      assert.strictEqual(blobFiles(directory).length, 0, "the replaced blob is gone")
      assert.deepStrictEqual(rowsOf(directory).map((r) => r.blob_id), [null])
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it("the size limit is enforced after a synchronous put", async () => {
    const directory = makeTempDir()
    const client = cacheness({ ...quiet, maxSize: 20_000, directory })
    try {
      for (let i = 0; i < 200; i++) await client.put({ user: i }, `value ${i} `.repeat(20))
      const stats = await client.stats()
      assert.isAtMost(stats.totalBytes, 20_000)
      assert.isBelow(stats.entries, 200)
      // The newest survive (least recently used go first).
      assert.strictEqual(await client.get({ user: 199 }), `value 199 `.repeat(20))
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it("the memory tier does not serve the value a synchronous put replaced", async () => {
    const directory = makeTempDir()
    const client = cacheness({ ...quiet, directory, memory: { maxEntries: 100 } })
    try {
      await client.put({ k: 1 }, "first")
      assert.strictEqual(await client.get({ k: 1 }), "first")
      assert.strictEqual(await client.get({ k: 1 }), "first")
      await client.put({ k: 1 }, "second")
      assert.strictEqual(await client.get({ k: 1 }), "second")
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

  it("failures are typed rejections, never synchronous throws", async () => {
    const directory = makeTempDir()
    const services = Layer.mergeAll(
      HasherXxhash.layer,
      CodecDefault.layer(),
      BlobStoreFileSystem.layer({ directory: path.join(directory, "blobs") }),
      MetadataStoreSqlite.layer({ filename: path.join(directory, "cacheness.db"), busyTimeout: "100 millis" })
    )
    const client = fromLayer(
      Cache.layerFromServices({ cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null }).pipe(
        Layer.provide(services)
      )
    )
    try {
      await client.put({ k: 1 }, "old")
      const bad = client.put({ k: 1 }, "x", { ttl: "soon" as any })
      assert.instanceOf(bad, Promise)
      const config = await bad.then(() => undefined, (error) => error)
      assert.strictEqual(config?._tag, "ConfigError")
      const locker = new Database(path.join(directory, "cacheness.db"))
      locker.pragma("busy_timeout = 0")
      locker.exec("BEGIN EXCLUSIVE")
      try {
        const busy = await client.put({ k: 1 }, "new").then(() => undefined, (error) => error)
        assert.strictEqual(busy?._tag, "MetadataError")
        assert.strictEqual(busy?.reason, "Busy")
      } finally {
        locker.exec("ROLLBACK")
        locker.close()
      }
      assert.strictEqual(await client.get({ k: 1 }), "old")
      // A schema takes the effectful path and is checked there.
      const schemaFailure = await client.put({ k: 2 }, "not a number" as any, { schema: Schema.Number as any }).then(
        () => undefined,
        (error) => error
      )
      assert.isDefined(schemaFailure)
      assert.strictEqual(await client.get({ k: 2 }), undefined)
    } finally {
      await client.close()
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })
})
