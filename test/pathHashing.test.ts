import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Option from "effect/Option"
import fc from "fast-check"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { pathToFileURL } from "node:url"
import * as CacheLayer from "../src/cache/layer.js"
import { Cache, Key as PublicKey } from "../src/index.js"
import type { PathFileSystem } from "../src/key/pathHashing.js"
import * as Key from "../src/key/pathKey.js"
import { Hasher, KeyError, PathFingerprints, type PathHashProgress } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import { MetadataStore } from "../src/metadata/service.js"
import type { KeyParams } from "../src/schema/CacheKey.js"
import { makeTempDir, tempDir } from "./support/tmp.js"

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const HOUR_AGO = () => new Date(Date.now() - 3_600_000)

/** Writes files (relative path → content) under `root`, mtimes an hour ago so fingerprints are kept. */
const writeTree = (root: string, files: Record<string, string | Uint8Array>): string => {
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(root, rel)
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, content)
    fs.utimesSync(file, HOUR_AGO(), HOUR_AGO())
  }
  return root
}

const sub = (root: string, name: string): string => {
  const dir = path.join(root, name)
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

/** A Hasher with its own in-memory fingerprint store (the metadata store the cache layers use). */
const hasherLayer = (options: HasherXxhash.HasherOptions = {}) =>
  HasherXxhash.layerWith(options).pipe(
    Layer.provideMerge(
      Layer.effect(
        PathFingerprints,
        Effect.map(MetadataStore, (m) => ({ lookup: m.lookupFingerprints, save: m.saveFingerprints }))
      )
    ),
    Layer.provideMerge(MetadataStoreMemory.layer)
  )

const keyWith = (layer: Layer.Layer<Hasher>) => (params: KeyParams) =>
  Effect.flatMap(Hasher, (h) => h.key(params)).pipe(Effect.provide(layer))

const keyOf = keyWith(HasherXxhash.layerWith({ fingerprints: false }))

const hashBytes = (bytes: Uint8Array) =>
  Effect.map(Effect.provide(Hasher, HasherXxhash.layer), (h) => h.hashBytes(bytes))

const keyErrorOf = (params: KeyParams, layer: Layer.Layer<Hasher> = HasherXxhash.layer) =>
  Effect.map(Effect.either(keyWith(layer)(params)), (result) => {
    assert.isTrue(Either.isLeft(result), "expected a KeyError")
    const error = (result as Either.Left<KeyError, unknown>).left
    assert.instanceOf(error, KeyError)
    return error
  })

/** Collects log messages of an effect. */
const withLogs = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const messages: Array<string> = []
    const logger = Logger.make(({ message }) => {
      messages.push(Array.isArray(message) ? message.map(String).join(" ") : String(message))
    })
    // Hashing progress is routine work, logged at Debug: read it at that level.
    const result = yield* self.pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger)),
      Logger.withMinimumLogLevel(LogLevel.Debug)
    )
    return [result, messages] as const
  })

/** `node:fs` with opens counted, and failures injected for chosen paths. */
const countingFs = (fail: (file: string) => NodeJS.ErrnoException | undefined = () => undefined) => {
  const opened: Array<string> = []
  const check = (file: unknown) => {
    const error = fail(String(file))
    if (error !== undefined) throw error
    opened.push(String(file))
  }
  const fileSystem: PathFileSystem = {
    statSync: fs.statSync,
    readdirSync: fs.readdirSync,
    readlinkSync: fs.readlinkSync,
    readSync: fs.readSync,
    closeSync: fs.closeSync,
    openSync: ((file: fs.PathLike, ...rest: Array<any>) => {
      check(file)
      return (fs.openSync as any)(file, ...rest)
    }) as typeof fs.openSync,
    promises: {
      open: (async (file: fs.PathLike, ...rest: Array<any>) => {
        check(file)
        return (fs.promises.open as any)(file, ...rest)
      }) as typeof fs.promises.open
    }
  }
  return { fileSystem, opened }
}

const errno = (code: string, file: string): NodeJS.ErrnoException =>
  Object.assign(new Error(`${code}: permission denied, open '${file}'`), {
    code,
    errno: -13,
    syscall: "open",
    path: file
  })

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

describe("Key.file", () => {
  it.scoped("same content at another path hits; an edit misses; the digest is XXH64 of the bytes", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      writeTree(root, { "a/train.csv": "x,y\n1,2\n", "b/copy.csv": "x,y\n1,2\n" })
      const a = path.join(root, "a/train.csv")
      const k1 = yield* keyOf({ model: "m", data: Key.file(a) })
      assert.strictEqual(k1, yield* keyOf({ model: "m", data: Key.file(path.join(root, "b/copy.csv")) }))
      fs.writeFileSync(a, "x,y\n1,3\n")
      assert.notStrictEqual(k1, yield* keyOf({ model: "m", data: Key.file(a) }))
      // Relative paths resolve against the working directory; the public export is the same module.
      assert.strictEqual(
        yield* keyOf({ d: PublicKey.file(path.relative(process.cwd(), a)) }),
        yield* keyOf({ d: Key.file(a) })
      )
      const hasher = yield* Effect.provide(Hasher, HasherXxhash.layer)
      assert.strictEqual(yield* hasher.hashPath(a), yield* hashBytes(fs.readFileSync(a)))
    }))

  it.scoped("a multi-chunk file is streamed to the same digest as hashing it whole", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const bytes = new Uint8Array(3 * 1024 * 1024 + 12_345).map((_, i) => (i * 2654435761) >>> 24)
      writeTree(root, { "big.bin": bytes })
      const hasher = yield* Effect.provide(Hasher, HasherXxhash.layer)
      assert.strictEqual(yield* hasher.hashPath(path.join(root, "big.bin")), yield* hashBytes(bytes))
    }))

  it.scoped("file: URLs hash by content like Key.file / Key.dir; other URLs stay keyed by href", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      writeTree(root, { "f.txt": "hello", "d/x": "1" })
      const file = path.join(root, "f.txt")
      const dir = path.join(root, "d")
      assert.strictEqual(yield* keyOf({ p: pathToFileURL(file) }), yield* keyOf({ p: Key.file(file) }))
      assert.strictEqual(yield* keyOf({ p: pathToFileURL(dir) }), yield* keyOf({ p: Key.dir(dir) }))
      assert.strictEqual(yield* keyOf({ p: Key.file(pathToFileURL(file)) }), yield* keyOf({ p: Key.file(file) }))
      const before = yield* keyOf({ nested: [new Map([["k", pathToFileURL(file)]])] })
      fs.writeFileSync(file, "hellO")
      assert.notStrictEqual(before, yield* keyOf({ nested: [new Map([["k", pathToFileURL(file)]])] }))
      assert.notStrictEqual(
        yield* keyOf({ u: new URL("https://example.com/f.txt") }),
        yield* keyOf({ u: Key.file(file) })
      )
    }))

  it.scoped("params without paths stay on the synchronous path and never touch the file system", () =>
    Effect.gen(function*() {
      const { fileSystem, opened } = countingFs(() => errno("EACCES", "anything"))
      const throwing = {
        ...fileSystem,
        statSync: (() => {
          throw new Error("statSync called")
        }) as any
      }
      const k = yield* keyWith(HasherXxhash.layerWith({ fileSystem: throwing }))({
        a: 1,
        b: [new URL("https://x.org")]
      })
      assert.strictEqual(k, yield* keyOf({ a: 1, b: [new URL("https://x.org")] }))
      assert.deepStrictEqual(opened, [])
    }))

  it.scoped("describes paths by their absolute path, without reading them", () =>
    Effect.gen(function*() {
      const hasher = yield* Effect.provide(Hasher, HasherXxhash.layer)
      const described = yield* hasher.describe({ f: Key.file("/nowhere/a.csv"), d: Key.dir("/nowhere/dir") })
      assert.deepStrictEqual(described, { d: { $dir: "/nowhere/dir" }, f: { $file: "/nowhere/a.csv" } })
    }))
})

// ---------------------------------------------------------------------------------------------
// Directories
// ---------------------------------------------------------------------------------------------

describe("Key.dir", () => {
  const tree = { "train.csv": "1,2\n", "img/a.png": "A", "img/b.png": "B", "deep/er/x.txt": "x" }

  it.scoped("same names and bytes hit; added, removed, renamed and edited files miss", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const one = writeTree(sub(root, "one"), tree)
      const two = writeTree(sub(root, "two"), tree)
      const base = yield* keyOf({ d: Key.dir(one) })
      assert.strictEqual(base, yield* keyOf({ d: Key.dir(two) }))

      writeTree(two, { "img/c.png": "C" })
      const added = yield* keyOf({ d: Key.dir(two) })
      assert.notStrictEqual(added, base)
      fs.rmSync(path.join(two, "img/c.png"))
      assert.strictEqual(yield* keyOf({ d: Key.dir(two) }), base)

      fs.renameSync(path.join(two, "img/b.png"), path.join(two, "img/bb.png"))
      assert.notStrictEqual(yield* keyOf({ d: Key.dir(two) }), base)
      fs.renameSync(path.join(two, "img/bb.png"), path.join(two, "img/b.png"))

      fs.writeFileSync(path.join(two, "deep/er/x.txt"), "y")
      assert.notStrictEqual(yield* keyOf({ d: Key.dir(two) }), base)
      fs.writeFileSync(path.join(two, "deep/er/x.txt"), "x")

      // Moving a file to another directory with the same name is a rename too.
      fs.renameSync(path.join(two, "train.csv"), path.join(two, "img/train.csv"))
      assert.notStrictEqual(yield* keyOf({ d: Key.dir(two) }), base)
    }))

  it.scoped("policy: empty subdirectories do not count; FIFOs are skipped unopened", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = writeTree(sub(root, "d"), tree)
      const base = yield* keyOf({ d: Key.dir(dir) })
      fs.mkdirSync(path.join(dir, "empty/nested"), { recursive: true })
      assert.strictEqual(yield* keyOf({ d: Key.dir(dir) }), base)
      execFileSync("mkfifo", [path.join(dir, "pipe")])
      assert.strictEqual(yield* keyOf({ d: Key.dir(dir) }), base)
    }))

  it.scoped("policy: a symlink to a file counts as a copy of it; links to directories are never followed", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const outside = writeTree(sub(root, "outside"), { "secret.bin": "s1", "more/x": "x" })
      const withCopy = writeTree(sub(root, "copy"), { "data.csv": "d", "latest.csv": "d" })
      const withLink = writeTree(sub(root, "link"), { "data.csv": "d" })
      fs.symlinkSync("data.csv", path.join(withLink, "latest.csv"))
      assert.strictEqual(yield* keyOf({ d: Key.dir(withLink) }), yield* keyOf({ d: Key.dir(withCopy) }))
      // Editing the link's target misses, as editing the file would.
      const linked = yield* keyOf({ d: Key.dir(withLink) })
      fs.writeFileSync(path.join(withLink, "data.csv"), "e")
      assert.notStrictEqual(yield* keyOf({ d: Key.dir(withLink) }), linked)

      // A link to another tree: counted by its link text, the other tree is never read.
      fs.symlinkSync(outside, path.join(withLink, "elsewhere"))
      const { fileSystem, opened } = countingFs()
      const counted = keyWith(HasherXxhash.layerWith({ fingerprints: false, fileSystem }))
      const k1 = yield* counted({ d: Key.dir(withLink) })
      assert.isFalse(opened.some((f) => f.startsWith(outside)), `read outside the tree: ${opened.join(", ")}`)
      fs.writeFileSync(path.join(outside, "secret.bin"), "s2")
      assert.strictEqual(yield* counted({ d: Key.dir(withLink) }), k1)
      // Repointing the link misses; a loop and a dangling link hash without hanging.
      fs.rmSync(path.join(withLink, "elsewhere"))
      fs.symlinkSync(path.join(outside, "more"), path.join(withLink, "elsewhere"))
      const k2 = yield* counted({ d: Key.dir(withLink) })
      assert.notStrictEqual(k2, k1)
      fs.symlinkSync(".", path.join(withLink, "loop"))
      fs.symlinkSync("missing-target", path.join(withLink, "dangling"))
      const k3 = yield* counted({ d: Key.dir(withLink) })
      assert.notStrictEqual(k3, k2)
      assert.strictEqual(yield* counted({ d: Key.dir(withLink) }), k3)
      // The root may itself be a link: it is the path the caller named.
      fs.symlinkSync(withCopy, path.join(root, "root-link"))
      assert.strictEqual(
        yield* keyOf({ d: Key.dir(path.join(root, "root-link")) }),
        yield* keyOf({ d: Key.dir(withCopy) })
      )
    }))

  it.scoped("golden: the directory listing layout is pinned", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = writeTree(sub(root, "g"), { "b.txt": "bee", "a/c.txt": "sea", "a/é.txt": "" })
      fs.symlinkSync("../nowhere", path.join(dir, "link"))
      const hasher = yield* Effect.provide(Hasher, HasherXxhash.layer)
      // The listing, written out by hand: version, then (kind, relative path, value) sorted by path.
      const u32 = (n: number) => Buffer.from(Uint32Array.of(n).buffer)
      const str = (s: string) => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)])
      const h = (s: string) => hasher.hashBytes(Buffer.from(s))
      const listing = Buffer.concat([
        Buffer.of(1),
        Buffer.of(1),
        str("a/c.txt"),
        str(h("sea")),
        Buffer.of(1),
        str("a/é.txt"),
        str(h("")),
        Buffer.of(1),
        str("b.txt"),
        str(h("bee")),
        Buffer.of(2),
        str("link"),
        str("../nowhere")
      ])
      const digest = yield* hasher.hashPath(dir)
      assert.strictEqual(digest, hasher.hashBytes(listing))
      assert.strictEqual(digest, "4da4d4a891fd3c0d")
      // The key: version 1, an object of one name, tag 0x11 and the digest.
      const key = Buffer.concat([Buffer.of(1, 0x09), u32(1), str("d"), Buffer.of(0x11), str(digest)])
      assert.strictEqual(yield* keyOf({ d: Key.dir(dir) }), hasher.hashBytes(key))
      const file = Buffer.concat([Buffer.of(1, 0x09), u32(1), str("f"), Buffer.of(0x10), str(h("bee"))])
      assert.strictEqual(yield* keyOf({ f: Key.file(path.join(dir, "b.txt")) }), hasher.hashBytes(file))
      const byPath = Buffer.concat([Buffer.of(1, 0x09), u32(1), str("f"), Buffer.of(0x12, 1), str("/no/such/file")])
      assert.strictEqual(yield* keyOf({ f: Key.file("/no/such/file") }), hasher.hashBytes(byPath))
    }))

  it.live("parallel hashing equals sequential hashing on random trees", () =>
    Effect.gen(function*() {
      const root = makeTempDir()
      const sequential = HasherXxhash.layerWith({ fingerprints: false, parallelFiles: 1_000_000 })
      const parallel = HasherXxhash.layerWith({ fingerprints: false, parallelFiles: 0, concurrency: 4 })
      const name = fc.stringMatching(/^[a-zé_.-]{1,6}$/).filter((n) => n !== "." && n !== "..")
      const treeArb = fc.dictionary(
        fc.array(name, { minLength: 1, maxLength: 3 }).map((parts) => parts.join("/")),
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc.integer({ min: 128 * 1024, max: 1300 * 1024 }).map((n) => new Uint8Array(n).fill(n & 255))
        ),
        { maxKeys: 12 }
      )
      let run = 0
      try {
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(treeArb, async (files) => {
              const dir = path.join(root, `t${run++}`)
              fs.mkdirSync(dir)
              const written: Record<string, Uint8Array> = {}
              for (const [rel, bytes] of Object.entries(files)) {
                // a name that is both a file and a directory prefix cannot exist: skip the clash
                const clash = Object.keys(written).some((w) => w.startsWith(`${rel}/`) || rel.startsWith(`${w}/`))
                if (!clash) written[rel] = bytes
              }
              writeTree(dir, written)
              const quiet = Logger.withMinimumLogLevel(LogLevel.Warning)
              const a = await Effect.runPromise(quiet(keyWith(sequential)({ d: Key.dir(dir) })))
              const b = await Effect.runPromise(quiet(keyWith(parallel)({ d: Key.dir(dir) })))
              assert.strictEqual(a, b)
              fs.rmSync(dir, { recursive: true, force: true })
            }),
            { numRuns: 25 }
          )
        )
      } finally {
        fs.rmSync(root, { recursive: true, force: true })
      }
    }))

  it.scoped("large trees report progress and log it", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const files: Record<string, string> = {}
      for (let i = 0; i < 100; i++) files[`f${i}.txt`] = "x".repeat(i)
      const dir = writeTree(sub(root, "t"), files)
      const progress: Array<PathHashProgress> = []
      const layer = hasherLayer({ onProgress: (p) => progress.push(p) })
      const [, logs] = yield* withLogs(keyWith(layer)({ d: Key.dir(dir) }))
      const last = progress[progress.length - 1]
      assert.deepStrictEqual(
        { ...last },
        { path: dir, filesDone: 100, filesTotal: 100, bytesDone: 4950, bytesTotal: 4950, filesFromFingerprints: 0 }
      )
      assert.isTrue(progress.length >= 100)
      assert.isTrue(logs.some((m) => m.includes(`hashing 100 files`) && m.includes(dir)), logs.join("\n"))
      assert.isTrue(logs.some((m) => m.includes(`hashed 100 files`)), logs.join("\n"))
    }))
})

// ---------------------------------------------------------------------------------------------
// Fingerprints
// ---------------------------------------------------------------------------------------------

describe("stat fingerprints", () => {
  it.scoped("an unchanged tree is not read again; an edit (mtime set explicitly) is", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = writeTree(sub(root, "d"), { "a.txt": "aaaa", "b/b.txt": "bbbb", "c.txt": "cccc" })
      const { fileSystem, opened } = countingFs()
      const progress: Array<PathHashProgress> = []
      const layer = hasherLayer({ fileSystem, onProgress: (p) => progress.push(p) })
      const key = keyWith(layer)
      // One layer instance: the in-memory fingerprint store lives as long as it.
      const [first, second, edited, restored] = yield* Effect.gen(function*() {
        const hasher = yield* Hasher
        const first = yield* hasher.key({ d: Key.dir(dir) })
        assert.strictEqual(opened.length, 3)
        const second = yield* hasher.key({ d: Key.dir(dir) })
        assert.strictEqual(opened.length, 3, "unchanged files must come from fingerprints")
        assert.strictEqual(progress[progress.length - 1].filesFromFingerprints, 3)

        // Same size, new content, mtime explicitly moved: only that file is read again.
        const b = path.join(dir, "b/b.txt")
        fs.writeFileSync(b, "BBBB")
        const later = new Date(Date.now() - 1_800_000)
        fs.utimesSync(b, later, later)
        const edited = yield* hasher.key({ d: Key.dir(dir) })
        assert.deepStrictEqual(opened.slice(3), [b])

        // Content edited back and the old mtime restored: ctime still moved, so it is read again.
        const stat = fs.statSync(b)
        fs.writeFileSync(b, "bbbb")
        fs.utimesSync(b, stat.atime, stat.mtime)
        const restored = yield* hasher.key({ d: Key.dir(dir) })
        assert.deepStrictEqual(opened.slice(4), [b])
        return [first, second, edited, restored] as const
      }).pipe(Effect.provide(layer))
      assert.strictEqual(first, second)
      assert.notStrictEqual(edited, first)
      assert.strictEqual(restored, first)
      // A fresh hasher without fingerprints agrees.
      assert.strictEqual(yield* key({ d: Key.dir(dir) }), first)
    }))

  it.scoped("files modified in the last seconds get no fingerprint (racy edits); fingerprints: false keeps none", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const file = path.join(root, "fresh.txt")
      fs.writeFileSync(file, "new")
      const { fileSystem, opened } = countingFs()
      yield* Effect.gen(function*() {
        const hasher = yield* Hasher
        yield* hasher.key({ f: Key.file(file) })
        yield* hasher.key({ f: Key.file(file) })
        assert.strictEqual(opened.length, 2)
        const store = yield* MetadataStore
        assert.deepStrictEqual(yield* store.lookupFingerprints([file]), [])
      }).pipe(Effect.provide(hasherLayer({ fileSystem })))

      fs.utimesSync(file, HOUR_AGO(), HOUR_AGO())
      yield* Effect.gen(function*() {
        const hasher = yield* Hasher
        yield* hasher.key({ f: Key.file(file) })
        yield* hasher.key({ f: Key.file(file) })
        assert.strictEqual(opened.length, 4)
        assert.deepStrictEqual(yield* (yield* MetadataStore).lookupFingerprints([file]), [])
      }).pipe(Effect.provide(hasherLayer({ fileSystem, fingerprints: false })))
    }))

  it.scoped("the documented blind spot: an edit that leaves size, mtime and ctime unchanged is not seen", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const file = path.join(writeTree(root, { "f.txt": "1111" }), "f.txt")
      const frozen = fs.statSync(file, { bigint: true })
      // A file system whose stat never changes stands for a clock set back or an mmap write.
      const fileSystem: PathFileSystem = {
        ...fs,
        statSync: ((p: string, o: any) => p === file ? frozen : fs.statSync(p, o)) as any
      }
      yield* Effect.gen(function*() {
        const hasher = yield* Hasher
        const before = yield* hasher.key({ f: Key.file(file) })
        fs.writeFileSync(file, "2222")
        assert.strictEqual(yield* hasher.key({ f: Key.file(file) }), before)
      }).pipe(Effect.provide(hasherLayer({ fileSystem })))
    }))

  it.scoped("the SQLite cache keeps fingerprints across reopen; content keys hit through the cache", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const data = writeTree(sub(root, "data"), { "x.csv": "1,2", "y.csv": "3,4" })
      const copy = writeTree(sub(root, "copy"), { "x.csv": "1,2", "y.csv": "3,4" })
      const progress: Array<PathHashProgress> = []
      const config = {
        directory: path.join(root, "cache"),
        cleanupOnOpen: false,
        pathHashing: { onProgress: (p: PathHashProgress) => progress.push(p) }
      }
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        yield* cache.put({ model: "m", data: Key.dir(data) }, "scores")
      }).pipe(Effect.provide(CacheLayer.layer(config)))
      assert.strictEqual(progress[progress.length - 1].filesFromFingerprints, 0)
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        assert.deepStrictEqual(yield* cache.get({ model: "m", data: Key.dir(data) }), Option.some("scores"))
        assert.strictEqual(progress[progress.length - 1].filesFromFingerprints, 2)
        assert.deepStrictEqual(yield* cache.get({ model: "m", data: Key.dir(copy) }), Option.some("scores"))
        const [entry] = yield* cache.list()
        assert.deepStrictEqual(entry.params, { data: { $dir: data }, model: "m" })
        fs.writeFileSync(path.join(copy, "y.csv"), "3,5")
        assert.isTrue(Option.isNone(yield* cache.get({ model: "m", data: Key.dir(copy) })))
      }).pipe(Effect.provide(CacheLayer.layer(config)))
    }))
})

// ---------------------------------------------------------------------------------------------
// By path, missing and unreadable
// ---------------------------------------------------------------------------------------------

describe("path keys by path string, missing and unreadable paths", () => {
  it.scoped("hashPathContent: false keys by the absolute path and reads nothing", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      writeTree(root, { "a.txt": "same", "b.txt": "same" })
      const { fileSystem, opened } = countingFs()
      const byPath = keyWith(HasherXxhash.layerWith({ hashPathContent: false, fileSystem }))
      const a = yield* byPath({ f: Key.file(path.join(root, "a.txt")) })
      assert.notStrictEqual(a, yield* byPath({ f: Key.file(path.join(root, "b.txt")) }))
      fs.writeFileSync(path.join(root, "a.txt"), "edited")
      assert.strictEqual(a, yield* byPath({ f: Key.file(path.join(root, "a.txt")) }))
      assert.notStrictEqual(a, yield* byPath({ f: Key.dir(path.join(root, "a.txt")) }))
      assert.deepStrictEqual(opened, [])
      // a file: URL keeps its href key, as before content hashing existed
      const url = pathToFileURL(path.join(root, "a.txt"))
      const byHref = yield* byPath({ u: url })
      fs.writeFileSync(path.join(root, "a.txt"), "edited again")
      assert.strictEqual(yield* byPath({ u: url }), byHref)
      assert.notStrictEqual(yield* keyOf({ u: url }), byHref)
      assert.deepStrictEqual(opened, [])
    }))

  it.scoped("a missing path is keyed by its path string, with a warning", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const missing = path.join(root, "not-yet.csv")
      const [key, logs] = yield* withLogs(keyOf({ f: Key.file(missing) }))
      assert.strictEqual(
        key,
        yield* keyWith(HasherXxhash.layerWith({ hashPathContent: false }))({ f: Key.file(missing) })
      )
      assert.isTrue(logs.some((m) => m.includes(missing) && m.includes("does not exist")), logs.join("\n"))
      // once it exists, it is keyed by content
      writeTree(root, { "not-yet.csv": "now" })
      assert.notStrictEqual(yield* keyOf({ f: Key.file(missing) }), key)
    }))

  it.scoped("an unreadable file is a KeyError naming it and its place in the key; the cache is unchanged", () =>
    Effect.gen(function*() {
      const root = yield* tempDir
      const dir = writeTree(sub(root, "d"), { "ok.txt": "ok", "locked/secret.bin": "s" })
      const secret = path.join(dir, "locked/secret.bin")
      // Tests run as root, where chmod 000 does not stop reads: inject the EACCES instead.
      const { fileSystem } = countingFs((f) => f === secret ? errno("EACCES", f) : undefined)
      const error = yield* keyErrorOf({ run: { inputs: [Key.dir(dir)] } }, HasherXxhash.layerWith({ fileSystem }))
      assert.strictEqual(error.reason, "Unreadable")
      assert.strictEqual(error.path, "params.run.inputs[0]")
      assert.include(error.message, secret)
      assert.include(error.message, "EACCES")

      // A FIFO, or a directory where a file is expected, fails without being opened.
      execFileSync("mkfifo", [path.join(root, "pipe")])
      const fifo = yield* keyErrorOf({ f: Key.file(path.join(root, "pipe")) })
      assert.strictEqual(fifo.reason, "Unreadable")
      assert.include(fifo.message, path.join(root, "pipe"))
      assert.include((yield* keyErrorOf({ f: Key.file(dir) })).message, "is a directory")
      assert.include((yield* keyErrorOf({ f: Key.dir(path.join(dir, "ok.txt")) })).message, "is not a directory")

      // Through the cache: a typed failure, nothing stored.
      const layer = CacheLayer.layerMemory()
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const put = yield* Effect.either(cache.put({ f: Key.file(dir) }, 1))
        assert.isTrue(Either.isLeft(put))
        assert.strictEqual((put as Either.Left<any, any>).left._tag, "KeyError")
        assert.strictEqual((yield* cache.stats()).entries, 0)
      }).pipe(Effect.provide(layer))
    }))
})
