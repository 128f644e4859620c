import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import { SystemError } from "@effect/platform/Error"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import * as BlobStoreMemory from "../src/blob/memory.js"
import * as BlobStorePg from "../src/blob/pg.js"
import { BlobStore, StorageError } from "../src/blob/service.js"
import { blobStoreSuite } from "../src/testing.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"

/** A fresh temp directory for the scope of one test, removed afterwards. */
const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-"))),
  (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
)

const fileSystemLayer = Layer.unwrapScoped(
  Effect.map(tempDirectory, (directory) => BlobStoreFileSystem.layer({ directory }))
)

blobStoreSuite("memory", BlobStoreMemory.layer)
blobStoreSuite("file system", fileSystemLayer)
pgDescribe("BlobStorePg", () => {
  // A small chunk size so the 1 MiB round trip spans many chunks.
  blobStoreSuite(
    "postgres",
    Layer.unwrapScoped(
      Effect.map(pgScopedSchema("blobs"), (schema) => BlobStorePg.layer({ url: pgUrl, schema, chunkSize: 64 * 1024 }))
    )
  )
})

/** Every file below `directory`, relative, sorted. */
const filesUnder = (directory: string): Array<string> =>
  (fs.readdirSync(directory, { recursive: true, withFileTypes: true }) as Array<fs.Dirent>)
    .filter((entry) => entry.isFile())
    .map((entry) => path.relative(directory, path.join(entry.parentPath ?? entry.path, entry.name)))
    .sort()

const id = "abcdef0123456789-v1"

/** Node's file system, except that `writeFile` writes half the bytes and then fails with `code`. */
const failingWrites = (code: string) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.map(FileSystem.FileSystem, (real) => ({
      ...real,
      writeFile: (file: string, data: Uint8Array, options?: FileSystem.WriteFileOptions) =>
        real.writeFile(file, data.subarray(0, data.byteLength >> 1), options).pipe(
          Effect.zipRight(
            Effect.fail(
              new SystemError({
                reason: code === "EACCES" ? "PermissionDenied" : "Unknown",
                module: "FileSystem",
                method: "writeFile",
                pathOrDescriptor: file,
                description: `${code}: simulated`,
                cause: Object.assign(new Error(`${code}: simulated`), { code })
              })
            )
          )
        )
    }))
  ).pipe(Layer.provide(NodeFileSystem.layer))

describe("BlobStoreFileSystem", () => {
  it.scoped("shards blobs as <directory>/ab/cd/<id>", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      yield* store.put(id, new Uint8Array([1, 2, 3]))
      yield* store.put("0000ffff00000000-2", new Uint8Array([4]))
      assert.deepStrictEqual(filesUnder(directory), [
        path.join("00", "00", "0000ffff00000000-2"),
        path.join("ab", "cd", id)
      ])
      assert.deepStrictEqual([...fs.readFileSync(path.join(directory, "ab", "cd", id))], [1, 2, 3])
      assert.strictEqual(store.location, path.resolve(directory))
      assert.strictEqual(store.backend, "filesystem")
    }))

  it.scoped("creates a missing directory, and leaves no temp files after puts", () =>
    Effect.gen(function*() {
      const directory = path.join(yield* tempDirectory, "nested", "blobs")
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      yield* Effect.forEach(Array.from({ length: 50 }, (_, n) => n), (n) =>
        store.put(`abcd${n.toString(16).padStart(12, "0")}-v${n}`, new Uint8Array(5000).fill(n)), {
        concurrency: 10
      })
      yield* store.put(id, new Uint8Array(10))
      yield* store.put(id, new Uint8Array(20))
      const files = filesUnder(directory)
      assert.strictEqual(files.length, 51)
      assert.isFalse(files.some((file) =>
        file.endsWith(".tmp")
      ))
    }))

  for (
    const [code, reason] of [["ENOSPC", "NoSpace"], ["EACCES", "PermissionDenied"], ["EIO", "WriteFailed"]] as const
  ) {
    it.scoped(`a failing write (${code}) is a StorageError ${reason} and leaves no temp file`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDirectory
        const store = yield* Effect.provide(
          BlobStoreFileSystem.make({ directory }),
          failingWrites(code)
        )
        const result = yield* Effect.either(store.put(id, new Uint8Array(1000).fill(7)))
        assert.isTrue(Either.isLeft(result))
        if (Either.isLeft(result)) {
          assert.instanceOf(result.left, StorageError)
          assert.strictEqual(result.left.reason, reason)
          assert.strictEqual(result.left.id, id)
          assert.include(result.left.message, "BlobStore.put")
        }
        assert.deepStrictEqual(filesUnder(directory), [])
        assert.isTrue(Option.isNone(yield* store.get(id)))
      }))
  }

  it.scoped("a failed overwrite keeps the previous version whole", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const good = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      yield* good.put(id, new Uint8Array(100).fill(1))
      const failing = yield* Effect.provide(BlobStoreFileSystem.make({ directory }), failingWrites("ENOSPC"))
      assert.isTrue(Either.isLeft(yield* Effect.either(failing.put(id, new Uint8Array(100).fill(2)))))
      const got = yield* good.get(id)
      assert.deepStrictEqual(Option.map(got, (bytes) => [...bytes]), Option.some(Array(100).fill(1)))
    }))

  it.scoped("recreates a shard directory removed behind its back", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      yield* store.put(id, new Uint8Array([1]))
      fs.rmSync(path.join(directory, "ab"), { recursive: true })
      yield* store.put(id, new Uint8Array([2]))
      assert.deepStrictEqual(Option.map(yield* store.get(id), (bytes) => [...bytes]), Option.some([2]))
    }))

  it.scopedLive("stale temp files: list ignores them, tempFiles/cleanupTemp find them, clear removes them", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const store = yield* Effect.provide(BlobStore, BlobStoreFileSystem.layer({ directory }))
      yield* store.put(id, new Uint8Array([1]))
      const shard = path.join(directory, "ab", "cd")
      const stale = path.join(shard, `.${id}.0123abcd.tmp`)
      const fresh = path.join(shard, `.abcdef0000000000-v2.99.tmp`)
      fs.writeFileSync(stale, "partial")
      fs.writeFileSync(fresh, "in flight")
      const hourAgo = new Date(Date.now() - 3600_000)
      fs.utimesSync(stale, hourAgo, hourAgo)
      // Someone else's file is neither a blob nor ours to delete.
      fs.writeFileSync(path.join(shard, "README"), "hands off")

      assert.deepStrictEqual(yield* store.list, [id])
      const temps = yield* Effect.provide(BlobStoreFileSystem.tempFiles(directory), NodeFileSystem.layer)
      assert.deepStrictEqual(temps.map((temp) => temp.id).sort(), [id, "abcdef0000000000-v2"].sort())

      const removed = yield* Effect.provide(
        BlobStoreFileSystem.cleanupTemp(directory, "10 minutes"),
        NodeFileSystem.layer
      )
      assert.strictEqual(removed, 1)
      assert.isFalse(fs.existsSync(stale))
      assert.isTrue(fs.existsSync(fresh))

      assert.strictEqual(yield* store.clear, 1)
      assert.deepStrictEqual(filesUnder(directory), [path.join("ab", "cd", "README")])
    }))
})
