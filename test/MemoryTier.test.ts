import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import { type ChildProcess, spawn } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import { afterAll } from "vitest"
import * as BlobStore from "../src/BlobStore.js"
import { tierOf } from "../src/cache/internal.js"
import * as Codec from "../src/Codec.js"
import * as Hasher from "../src/Hasher.js"
import { Cache, type CacheConfig, cacheness, ConfigError } from "../src/index.js"
import * as MetadataStore from "../src/MetadataStore.js"
import { runChild } from "./support/child.js"
import { pgDescribe, pgExec, pgSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir, tempDir } from "./support/tmp.js"

const root = path.resolve(import.meta.dirname, "..")

/** Another process on the same cache: `send` resolves once its write has committed. */
interface Worker {
  readonly send: (command: Record<string, unknown>) => Promise<unknown>
  readonly close: () => Promise<void>
}

const startWorker = (config: CacheConfig): Promise<Worker> =>
  new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(
      process.execPath,
      ["--import", "tsx", path.resolve(root, "test/support/tierWorker.ts"), JSON.stringify(config)],
      { cwd: root, stdio: ["pipe", "pipe", "pipe"] }
    )
    let stderr = ""
    child.stderr!.on("data", (d) => (stderr += d))
    const waiting: Array<(line: Record<string, unknown>) => void> = []
    readline.createInterface({ input: child.stdout! }).on("line", (line) => {
      const message = JSON.parse(line) as Record<string, unknown>
      if (message.ready === true) {
        resolve({
          send: (command) =>
            new Promise((done, fail) => {
              waiting.push((reply) => reply.ok === true ? done(reply.result) : fail(new Error(String(reply.error))))
              child.stdin!.write(JSON.stringify(command) + "\n")
            }),
          close: () =>
            new Promise((done) => {
              child.on("close", () => done())
              child.stdin!.write(JSON.stringify({ op: "close" }) + "\n")
            })
        })
        return
      }
      waiting.shift()?.(message)
    })
    child.on("error", reject)
    child.on("close", (code) => {
      if (code !== 0) reject(new Error(`tier worker exited with ${code}: ${stderr}`))
    })
  })

const key = { model: "m", version: 1 }

/**
 * The coherence contract, against another real process writing to the same stores: its put,
 * overwrite, invalidation and clear are seen by this process's very next read.
 */
const coherenceSuite = (name: string, configOf: () => CacheConfig, remembers: boolean) =>
  describe(`${name}: another process's writes are seen on the next read`, () => {
    it("put, overwrite, invalidate, clear, expiry cleanup", { timeout: 60_000 }, async () => {
      const config = configOf()
      const cache = cacheness({ ...config, memory: {} })
      const other = await startWorker(config)
      try {
        assert.strictEqual(await cache.get(key), undefined)
        await other.send({ op: "put", key, value: { v: 1, payload: "x".repeat(100) } })
        const first = await cache.get<{ v: number }>(key)
        assert.strictEqual(first?.v, 1)
        const again = await cache.get<{ v: number }>(key)
        assert.deepStrictEqual(again, first)
        // Served from memory: the very object decoded the first time, not a second decode.
        if (remembers) assert.strictEqual(again, first)

        await other.send({ op: "put", key, value: { v: 2, payload: "y".repeat(100) } })
        assert.strictEqual((await cache.get<{ v: number }>(key))?.v, 2)

        // A blob-sized value (past the inline threshold), then overwritten by another blob.
        await other.send({ op: "put", key, value: { v: 3, payload: "z".repeat(40_000) } })
        assert.strictEqual((await cache.get<{ v: number }>(key))?.v, 3)
        assert.strictEqual((await cache.get<{ v: number }>(key))?.v, 3)
        await other.send({ op: "put", key, value: { v: 4, payload: "w".repeat(40_000) } })
        assert.strictEqual((await cache.get<{ v: number }>(key))?.v, 4)

        assert.strictEqual(await other.send({ op: "invalidate", key }), true)
        assert.strictEqual(await cache.get(key), undefined)

        await other.send({ op: "put", key, value: { v: 5 } })
        const fifth = await cache.get<{ v: number }>(key)
        assert.strictEqual(fifth?.v, 5)
        if (remembers) assert.strictEqual(await cache.get(key), fifth)
        assert.strictEqual(await other.send({ op: "clear" }), 1)
        assert.strictEqual(await cache.get(key), undefined)

        // This process's own writes, between the other's.
        await cache.put(key, { v: 6 })
        assert.strictEqual((await cache.get<{ v: number }>(key))?.v, 6)
        await other.send({ op: "put", key, value: { v: 7 } })
        assert.strictEqual((await cache.get<{ v: number }>(key))?.v, 7)
        assert.strictEqual(await cache.invalidate(key), true)
        assert.strictEqual(await cache.get(key), undefined)
      } finally {
        await other.close()
        await cache.close()
      }
    })
  })

const sqliteDirs: Array<string> = []
afterAll(() => {
  for (const dir of sqliteDirs) fs.rmSync(dir, { recursive: true, force: true })
})
const freshDir = () => {
  const dir = makeTempDir()
  sqliteDirs.push(dir)
  return dir
}

coherenceSuite("SQLite directory", () => ({ directory: freshDir() }), true)
// The JSON store reports no change count: each hit checks its row, and skips only the decode.
coherenceSuite("JSON directory", () => ({ directory: freshDir(), metadataBackend: "json" }), true)

pgDescribe("PostgreSQL", () => {
  const schema = pgSchema("tier")
  const config: CacheConfig = { metadataBackend: "postgres", blobs: "postgres", postgres: { url: pgUrl, schema } }
  coherenceSuite("PostgreSQL (maxStaleness 0: each hit checks its row)", () => config, true)

  /** Polls until `get` returns `expected`; how long that took (ms), or Infinity past `limit`. */
  const seenWithin = async (get: () => Promise<unknown>, expected: unknown, limit: number) => {
    const started = Date.now()
    while (Date.now() - started <= limit) {
      if (JSON.stringify(await get()) === JSON.stringify(expected)) return Date.now() - started
      await new Promise((r) => setTimeout(r, 10))
    }
    return Number.POSITIVE_INFINITY
  }

  it("maxStaleness > 0: NOTIFY ends trust in a held value, a lost listener within the window at the latest", {
    timeout: 60_000
  }, async () => {
    const window = 3000
    const cache = cacheness({ ...config, memory: { maxStaleness: window } })
    const other = await startWorker(config)
    const pushedKey = { pushed: true }
    try {
      await other.send({ op: "put", key: pushedKey, value: { v: 1 } })
      const first = await cache.get(pushedKey)
      assert.deepStrictEqual(first, { v: 1 })
      assert.strictEqual(await cache.get(pushedKey), first)
      // Another process's overwrite: its notification arrives a moment after the commit.
      await other.send({ op: "put", key: pushedKey, value: { v: 2 } })
      assert.isBelow(await seenWithin(() => cache.get(pushedKey), { v: 2 }, window), window)
      // The listener is cut: until it is back, no notification arrives, so each hit checks its row.
      await pgExec(
        `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'cacheness-listen:${schema}'`
      )
      await other.send({ op: "put", key: pushedKey, value: { v: 3 } })
      assert.isBelow(await seenWithin(() => cache.get(pushedKey), { v: 3 }, window), window + 100)
      // Back (within the reconnection backoff): a new write is heard again.
      await new Promise((r) => setTimeout(r, 500))
      await other.send({ op: "put", key: pushedKey, value: { v: 4 } })
      assert.isBelow(await seenWithin(() => cache.get(pushedKey), { v: 4 }, window), window)
      await other.send({ op: "invalidate", key: pushedKey })
      assert.isBelow(await seenWithin(() => cache.get(pushedKey), undefined, window), window)
    } finally {
      await other.close()
      await cache.close()
    }
  })

  it.scoped(
    "maxStaleness > 0: hits are served on the count alone once the listener is confirmed",
    () =>
      Effect.gen(function*() {
        const cache = yield* Layer.build(Cache.layer({ ...config, memory: { maxStaleness: "1 minute" } })).pipe(
          Effect.map((context) => context.unsafeMap.get(Cache.Cache.key) as Cache.Cache["Type"])
        )
        const k = { confirmed: Math.random() }
        yield* cache.put(k, "v")
        // The put's own notification comes back a moment later and moves the count once more.
        yield* Effect.promise(() => new Promise((r) => setTimeout(r, 300)))
        yield* cache.get(k)
        const before = tierStats(cache)
        for (let i = 0; i < 10; i++) yield* cache.get(k)
        const after = tierStats(cache)
        assert.strictEqual(after.served - before.served, 10)
        assert.strictEqual(after.revalidated, before.revalidated)
        // At maxStaleness 0 every hit checks its row (PostgreSQL's count is pushed, not exact).
        const strict = yield* Layer.build(Cache.layer({ ...config, memory: {} })).pipe(
          Effect.map((context) => context.unsafeMap.get(Cache.Cache.key) as Cache.Cache["Type"])
        )
        yield* strict.get(k)
        for (let i = 0; i < 10; i++) yield* strict.get(k)
        assert.strictEqual(tierStats(strict).served, 0)
        assert.strictEqual(tierStats(strict).revalidated, 10)
      }),
    { timeout: 60_000 }
  )

  it(
    "a process that never calls close() exits (the listening connection is unref'd)",
    { timeout: 60_000 },
    async () => {
      const result = await runChild("test/support/tierExit.ts", [
        JSON.stringify({ ...config, memory: { maxStaleness: "1 second" } })
      ])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(JSON.parse(result.stdout), { value: "value", same: true })
    }
  )
})

describe("eviction by another process", () => {
  it("an entry evicted by another process's size limit is a miss here", { timeout: 60_000 }, async () => {
    const directory = freshDir()
    const cache = cacheness({ directory, memory: {} })
    // The other process enforces a small size limit: its puts evict the least recently used.
    const other = await startWorker({ directory, maxSize: "200 KiB", compression: { codec: "none" } })
    const evicted = { evicted: true }
    try {
      await other.send({ op: "put", key: evicted, value: "a".repeat(40_000) })
      const first = await cache.get(evicted)
      assert.strictEqual(await cache.get(evicted), first)
      for (let i = 0; i < 8; i++) {
        await new Promise((r) => setTimeout(r, 5))
        await other.send({ op: "put", key: { filler: i }, value: "b".repeat(40_000) })
      }
      assert.isFalse(await other.send({ op: "has", key: evicted }) as boolean, "evicted by the other process")
      assert.strictEqual(await cache.get(evicted), undefined)
    } finally {
      await other.close()
      await cache.close()
    }
  })

  it("a process that never calls close() exits (SQLite)", { timeout: 60_000 }, async () => {
    const result = await runChild("test/support/tierExit.ts", [JSON.stringify({ directory: freshDir(), memory: {} })])
    assert.strictEqual(result.code, 0, result.stderr)
    assert.deepStrictEqual(JSON.parse(result.stdout), { value: "value", same: true })
  })
})

describe("maxStaleness", () => {
  it.scoped(
    "> 0: another process's write may be unseen within the window, never after it",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const other = yield* Effect.acquireRelease(
          Effect.promise(() => startWorker({ directory })),
          (w) => Effect.promise(() => w.close())
        )
        const cache = yield* Layer.build(Cache.layer({ directory, memory: { maxStaleness: "10 seconds" } })).pipe(
          Effect.map((context) => context.unsafeMap.get(Cache.Cache.key) as Cache.Cache["Type"])
        )
        yield* Effect.promise(() => other.send({ op: "put", key, value: { v: 1 } }))
        assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 1 }))
        yield* Effect.promise(() => other.send({ op: "put", key, value: { v: 2 } }))
        // Within the window (no time has passed on the TestClock): the change count is not read.
        assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 1 }))
        yield* TestClock.adjust("9999 millis")
        assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 1 }))
        yield* TestClock.adjust("1 millis")
        assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 2 }))
        yield* Effect.promise(() => other.send({ op: "invalidate", key }))
        yield* TestClock.adjust("10 seconds")
        assert.deepStrictEqual(yield* cache.get(key), Option.none())
        // This process's own writes are seen at once, window or not.
        yield* cache.put(key, { v: 3 })
        assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 3 }))
        yield* cache.put(key, { v: 4 })
        assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 4 }))
        yield* cache.invalidate(key)
        assert.deepStrictEqual(yield* cache.get(key), Option.none())
      }),
    { timeout: 60_000 }
  )
})

const tierStats = (cache: Cache.Cache["Type"]) => tierOf(cache)!.stats()
const tierSize = tierStats

describe("in this process", () => {
  it.effect("TTL is respected from memory (TestClock)", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.put(key, { v: 1 }, { ttl: "1 hour" })
      const first = yield* cache.get(key)
      const second = yield* cache.get(key)
      assert.strictEqual(Option.getOrThrow(second), Option.getOrThrow(first))
      yield* TestClock.adjust("59 minutes")
      assert.strictEqual(Option.getOrThrow(yield* cache.get(key)), Option.getOrThrow(first))
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(yield* cache.get(key), Option.none())
      assert.strictEqual(tierSize(cache).entries, 0)
      // touch renews the stored expiry: memory follows the row.
      yield* cache.put(key, { v: 2 }, { ttl: "1 hour" })
      yield* cache.get(key)
      yield* cache.touch(key, "3 hours")
      yield* TestClock.adjust("2 hours")
      assert.deepStrictEqual(yield* cache.get(key), Option.some({ v: 2 }))
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(yield* cache.get(key), Option.none())
    }).pipe(Effect.provide(Cache.layerMemory({ memory: {} }))))

  it.effect("the entry bound holds, least recently used out first", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const held: Array<unknown> = []
      for (let i = 0; i < 5; i++) {
        yield* cache.put({ i }, { i })
        held.push(Option.getOrThrow(yield* cache.get({ i })))
        assert.isAtMost(tierSize(cache).entries, 3)
      }
      assert.strictEqual(tierSize(cache).entries, 3)
      // 2, 3, 4 held; reading 2 makes 3 the least recently used.
      assert.strictEqual(Option.getOrThrow(yield* cache.get({ i: 2 })), held[2])
      yield* cache.get({ i: 0 })
      assert.notStrictEqual(Option.getOrThrow(yield* cache.get({ i: 3 })), held[3])
      assert.strictEqual(Option.getOrThrow(yield* cache.get({ i: 2 })), held[2])
      // Evicted from memory is not evicted from the cache.
      assert.deepStrictEqual(yield* cache.get({ i: 1 }), Option.some({ i: 1 }))
    }).pipe(Effect.provide(Cache.layerMemory({ memory: { maxEntries: 3 } }))))

  it.scoped("the byte bound holds (SQLite, blob-sized typed arrays)", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const cache = yield* Layer.build(
        Cache.layer({ directory, memory: { maxSize: "100 KiB" }, compression: { codec: "none" } })
      ).pipe(Effect.map((context) => context.unsafeMap.get(Cache.Cache.key) as Cache.Cache["Type"]))
      for (let i = 0; i < 6; i++) {
        yield* cache.put({ i }, new Float64Array(4096).fill(i)) // 32 KiB each
        const got = Option.getOrThrow(yield* cache.get({ i })) as Float64Array
        assert.strictEqual(got[0], i)
        const size = tierSize(cache)
        assert.isAtMost(size.bytes, 100 * 1024)
        assert.isAtMost(size.entries, 3)
      }
      assert.strictEqual(tierSize(cache).entries, 3)
      // A value larger than the whole bound is served but never held.
      yield* cache.put({ big: true }, new Float64Array(16_384))
      assert.strictEqual((Option.getOrThrow(yield* cache.get({ big: true })) as Float64Array).length, 16_384)
      assert.isAtMost(tierSize(cache).bytes, 100 * 1024)
    }))

  it.effect("schema-checked gets are validated: a held value is served only for its schema", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const Scores = Schema.Struct({ scores: Schema.Array(Schema.Number) })
      const Names = Schema.Struct({ names: Schema.Array(Schema.String) })
      yield* cache.put(key, { scores: [1, 2] })
      const plain = yield* cache.get(key)
      const typed = yield* cache.get(key, { schema: Scores })
      assert.deepStrictEqual(typed, Option.some({ scores: [1, 2] }))
      assert.strictEqual(Option.getOrThrow(yield* cache.get(key, { schema: Scores })), Option.getOrThrow(typed))
      assert.deepStrictEqual(yield* cache.get(key), plain)
      // A mismatch is a miss and removes the entry, as without the tier.
      assert.deepStrictEqual(yield* cache.get(key, { schema: Names }), Option.none())
      assert.deepStrictEqual(yield* cache.get(key), Option.none())
      // Bad get options are still the typed error, whatever memory holds.
      yield* cache.put(key, 1)
      yield* cache.get(key)
      const bad = yield* Effect.flip(cache.get(key, { shema: Scores } as any))
      assert.instanceOf(bad, ConfigError)
    }).pipe(Effect.provide(Cache.layerMemory({ memory: {} }))))

  it.effect("the memoised-function memo and the tier agree", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.put(key, "a")
      assert.deepStrictEqual(yield* cache.get(key), Option.some("a"))
      yield* cache.put(key, "b")
      assert.deepStrictEqual(yield* cache.get(key), Option.some("b"))
      yield* cache.clear()
      assert.deepStrictEqual(yield* cache.get(key), Option.none())
      const stats = yield* cache.stats()
      // Hits served from memory count like any other hit.
      assert.strictEqual(stats.hits, 2)
      assert.strictEqual(stats.misses, 1)
    }).pipe(Effect.provide(Cache.layerMemory({ memory: {} }))))
})

describe("bad options are typed errors", () => {
  const cases: ReadonlyArray<readonly [unknown, string]> = [
    [{ maxEntries: 0 }, "memory.maxEntries"],
    [{ maxEntries: 1.5 }, "memory.maxEntries"],
    [{ maxSize: 0 }, "memory.maxSize"],
    [{ maxSize: "lots" }, "memory.maxSize"],
    [{ maxStaleness: "-1 seconds" }, "memory.maxStaleness"],
    [{ maxStaleness: Infinity }, "memory.maxStaleness"],
    [{ maxStaleness: "soon" }, "memory.maxStaleness"],
    [{ maxEntrys: 10 }, "memory"],
    ["big", "memory"]
  ]
  for (const [memory, field] of cases) {
    it.scoped(`Cache.layer memory ${JSON.stringify(memory)} → ${field}`, () =>
      Effect.gen(function*() {
        const directory = path.join(yield* tempDir, "never")
        const error = yield* Effect.flip(Layer.build(Cache.layer({ directory, memory } as any)))
        assert.instanceOf(error, ConfigError)
        assert.isTrue((error as ConfigError).field.startsWith(field), (error as ConfigError).message)
        // Nothing was created.
        assert.isFalse(fs.existsSync(directory))
      }))
  }

  it.scoped("layerFromServices and cacheness() check the same way", () =>
    Effect.gen(function*() {
      const services = Layer.mergeAll(
        Hasher.layer,
        Codec.layer(),
        MetadataStore.layerMemory(),
        BlobStore.layerMemory()
      )
      const error = yield* Effect.flip(
        Layer.build(Cache.layerFromServices({ memory: { maxEntries: -1 } }).pipe(Layer.provide(services)))
      )
      assert.instanceOf(error, ConfigError)
      assert.strictEqual((error as ConfigError).field, "memory.maxEntries")
      const ok = yield* Layer.build(Cache.layerFromServices({ memory: {} }).pipe(Layer.provide(services)))
      assert.isDefined(ok)
      const client = cacheness({ metadataBackend: "memory", memory: { maxStaleness: "forever" } } as any)
      const rejected = yield* Effect.flip(Effect.tryPromise(() => client.get(key)))
      assert.instanceOf(rejected.error, ConfigError)
      yield* Effect.promise(() => client.close())
    }))
})
