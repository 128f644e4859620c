/**
 * `has`, `get`, `getWithMetadata` and a memoised hit (`cached`) take the same read decision
 * (issue 15 item 5), and a value is never served under another key, whatever `verifyIntegrity`
 * says (issue 16 item 13: the key slot of the value header).
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as TestClock from "effect/TestClock"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as Header from "../src/codec/header.js"
import { cached } from "../src/index.js"
import { Hasher } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { tempDir } from "./support/tmp.js"

const KEY = "read-decision-signing-key-0123456789"
const OTHER_KEY = "another-signing-key-9876543210fedcba"
const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

type Row = { key: string; blobId: string | null; checksum: string }

const db = <A>(directory: string, use: (db: Database.Database) => A): A => {
  const handle = new Database(path.join(directory, "cacheness.db"))
  try {
    return use(handle)
  } finally {
    handle.close()
  }
}
const rows = (directory: string): Array<Row> =>
  db(
    directory,
    (d) => d.prepare("SELECT key, blob_id AS blobId, checksum FROM cacheness_entries ORDER BY key").all() as Array<Row>
  )
const blobPath = (directory: string, id: string) => path.join(directory, "blobs", id.slice(0, 2), id.slice(2, 4), id)

/** Runs `use` on a cache in `directory` with warnings silenced. */
const withCache = <A, E>(directory: string, config: Cache.CacheConfig, use: Effect.Effect<A, E, Cache.Cache>) =>
  Effect.scoped(Effect.provide(use, Cache.layer({ directory, ...manual, ...config }))).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
  )

/** A memoised function built afresh (no in-process memo carried over), counting its runs. */
const memoised = () => {
  const counter = { runs: 0 }
  const fn = cached((n: number) => Effect.sync(() => (counter.runs++, value(n))), {
    name: "read-decision",
    ttl: "1 hour"
  })
  return { fn, counter }
}

const BIG = incompressible(40_000)
let size = 100
const value = (n: number) => size > 1000 ? `${n}:${BIG}` : { n, small: "x".repeat(size) }

type State = {
  readonly name: string
  readonly kinds: ReadonlyArray<"inline" | "blob">
  readonly writer?: Cache.CacheConfig
  readonly reader?: Cache.CacheConfig
  readonly damage: (directory: string, row: Row) => void
  readonly served: boolean
}

const states: ReadonlyArray<State> = [
  { name: "fresh", kinds: ["inline", "blob"], damage: () => {}, served: true },
  {
    name: "expired",
    kinds: ["inline", "blob"],
    damage: (directory, row) =>
      db(directory, (d) => d.prepare("UPDATE cacheness_entries SET expires_at = 0 WHERE key = ?").run(row.key)),
    served: false
  },
  {
    name: "missing blob",
    kinds: ["blob"],
    damage: (directory, row) => fs.rmSync(blobPath(directory, row.blobId!)),
    served: false
  },
  {
    name: "checksum mismatch",
    kinds: ["inline", "blob"],
    damage: (directory, row) => {
      if (row.blobId === null) {
        db(directory, (d) => {
          const { inline } = d.prepare("SELECT inline_value AS inline FROM cacheness_entries WHERE key = ?").get(
            row.key
          ) as { inline: Buffer }
          inline[inline.length - 2] ^= 0x01
          d.prepare("UPDATE cacheness_entries SET inline_value = ? WHERE key = ?").run(inline, row.key)
        })
        return
      }
      const file = blobPath(directory, row.blobId)
      const bytes = fs.readFileSync(file)
      bytes[bytes.length - 2] ^= 0x01
      fs.writeFileSync(file, bytes)
    },
    served: false
  },
  {
    name: "signed, read without the key",
    kinds: ["inline", "blob"],
    writer: { signing: { key: KEY } },
    damage: () => {},
    served: false
  },
  {
    name: "signed, read with another key",
    kinds: ["inline", "blob"],
    writer: { signing: { key: KEY } },
    reader: { signing: { key: OTHER_KEY } },
    damage: () => {},
    served: false
  },
  {
    name: "signed, read with the key",
    kinds: ["inline", "blob"],
    writer: { signing: { key: KEY } },
    reader: { signing: { key: KEY } },
    damage: () => {},
    served: true
  }
]

/** Builds the state in a fresh directory (the entry written by a memoised call); its key. */
const prepare = (state: State, kind: "inline" | "blob") =>
  Effect.gen(function*() {
    size = kind === "inline" ? 100 : 40_000
    const directory = yield* tempDir
    yield* withCache(directory, state.writer ?? {}, memoised().fn(7))
    const [row] = rows(directory)
    assert.strictEqual(kind === "blob", row!.blobId !== null, "the entry is stored as intended")
    state.damage(directory, row!)
    return { directory, key: row!.key as Cache.CacheKey }
  })

describe("has, get, getWithMetadata and cached agree", () => {
  for (const state of states) {
    for (const kind of state.kinds) {
      it.scoped(`${state.name} (${kind})`, () =>
        Effect.gen(function*() {
          const observed: Record<string, boolean> = {}
          const observe = (name: string, read: (key: Cache.CacheKey) => Effect.Effect<boolean, unknown, Cache.Cache>) =>
            Effect.gen(function*() {
              const { directory, key } = yield* prepare(state, kind)
              observed[name] = yield* withCache(directory, state.reader ?? {}, read(key))
            })
          yield* observe("has", (key) => Effect.flatMap(Cache.Cache, (c) => c.has(key)))
          yield* observe("get", (key) => Effect.map(Effect.flatMap(Cache.Cache, (c) => c.get(key)), Option.isSome))
          yield* observe("getWithMetadata", (key) =>
            Effect.map(Effect.flatMap(Cache.Cache, (c) => c.getWithMetadata(key)), Option.isSome))
          yield* observe("cached", () =>
            Effect.gen(function*() {
              const { counter, fn } = memoised()
              const result = yield* fn(7)
              assert.deepStrictEqual(result, value(7), "a memoised call returns its own value")
              return counter.runs === 0
            }))
          // has after get: a broken entry get removed is not there either, a good one still is.
          yield* observe("has after get", (key) =>
            Effect.flatMap(Cache.Cache, (c) =>
              Effect.zipRight(c.get(key), c.has(key))))
          const expected = state.served
          assert.deepStrictEqual(observed, {
            has: expected,
            get: expected,
            getWithMetadata: expected,
            cached: expected,
            "has after get": expected
          })
        }))
    }
  }

  it.scoped("has neither counts hits nor misses", () =>
    Effect.gen(function*() {
      const { directory, key } = yield* prepare(states[0]!, "blob")
      const stats = yield* withCache(
        directory,
        {},
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const before = yield* cache.stats()
          assert.isTrue(yield* cache.has(key))
          assert.isFalse(yield* cache.has({ absent: true }))
          return [before, yield* cache.stats()] as const
        })
      )
      assert.strictEqual(stats[1].hits, stats[0].hits)
      assert.strictEqual(stats[1].misses, stats[0].misses)
    }))
})

describe("a value is bound to its key (header key slot)", () => {
  for (const verifyIntegrity of [false, true]) {
    it.scoped(`two swapped blob files (verifyIntegrity ${verifyIntegrity}): both misses, never the other value`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const a = `a:${incompressible(40_000)}`
        const b = `b:${incompressible(40_000)}`
        const keys = yield* withCache(
          directory,
          { verifyIntegrity },
          Effect.gen(function*() {
            const cache = yield* Cache.Cache
            return [yield* cache.put({ k: "a" }, a), yield* cache.put({ k: "b" }, b)] as const
          })
        )
        const byKey = new Map(rows(directory).map((r) => [r.key, r]))
        const fileA = blobPath(directory, byKey.get(keys[0])!.blobId!)
        const fileB = blobPath(directory, byKey.get(keys[1])!.blobId!)
        const bytesA = fs.readFileSync(fileA)
        const bytesB = fs.readFileSync(fileB)
        assert.strictEqual(bytesA.length, bytesB.length, "same size, so no size check can tell them apart")
        assert.isTrue(Header.keyMatches(bytesA, keys[0]), "the stored header names its key")
        fs.writeFileSync(fileA, bytesB)
        fs.writeFileSync(fileB, bytesA)
        const result = yield* withCache(
          directory,
          { verifyIntegrity },
          Effect.gen(function*() {
            const cache = yield* Cache.Cache
            return [
              yield* cache.get({ k: "a" }),
              yield* cache.get({ k: "b" }),
              yield* cache.has({ k: "a" }),
              yield* cache.has({ k: "b" })
            ] as const
          })
        )
        assert.deepStrictEqual(result, [Option.none(), Option.none(), false, false])
        assert.deepStrictEqual(rows(directory), [], "both entries removed")
      }))
  }

  it.scoped("a row pointed at another entry's inline value (verifyIntegrity false): a miss", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const keys = yield* withCache(
        directory,
        { verifyIntegrity: false },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return [yield* cache.put({ k: "a" }, { v: "aaaa" }), yield* cache.put({ k: "b" }, { v: "bbbb" })] as const
        })
      )
      db(
        directory,
        (d) =>
          d.prepare(
            "UPDATE cacheness_entries SET inline_value = (SELECT inline_value FROM cacheness_entries WHERE key = ?) WHERE key = ?"
          )
            .run(keys[1], keys[0])
      )
      const result = yield* withCache(
        directory,
        { verifyIntegrity: false },
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return [yield* cache.get({ k: "a" }), yield* cache.get({ k: "b" })] as const
        })
      )
      assert.deepStrictEqual(result, [Option.none(), Option.some({ v: "bbbb" })])
    }))

  it.scoped("values written with a version 1 header (no key slot) are still read", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const big = `old:${incompressible(40_000)}`
      const keys = yield* withCache(
        directory,
        {},
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return [yield* cache.put({ k: "inline" }, { v: 1 }), yield* cache.put({ k: "blob" }, big)] as const
        })
      )
      // Rewrite both values as an earlier release stored them: version 1, no key slot, with the
      // checksum such a release computed (XXH64 bound to the key, as `bindKey` does).
      const hasher = yield* Effect.provide(Hasher, HasherXxhash.layer)
      const toV1 = (bytes: Buffer): Buffer => {
        const header = Header.parse(bytes, "test") as Header.Header
        const out = Buffer.concat([bytes.subarray(0, header.keyOffset), bytes.subarray(header.payloadOffset)])
        out[2] = 1
        return out
      }
      const bound = (bytes: Uint8Array, key: string) => {
        const checksum = hasher.hashBytes(bytes)
        const half = (i: number) =>
          ((Number.parseInt(checksum.slice(i, i + 8), 16) ^ Number.parseInt(key.slice(i, i + 8), 16)) >>> 0).toString(
            16
          ).padStart(8, "0")
        return half(0) + half(8)
      }
      const byKey = new Map(rows(directory).map((r) => [r.key, r]))
      db(directory, (d) => {
        const { inline } = d.prepare("SELECT inline_value AS inline FROM cacheness_entries WHERE key = ?").get(
          keys[0]
        ) as { inline: Buffer }
        const old = toV1(inline)
        d.prepare("UPDATE cacheness_entries SET inline_value = ?, stored_bytes = ?, checksum = ? WHERE key = ?")
          .run(old, old.length, bound(old, keys[0]), keys[0])
        const file = blobPath(directory, byKey.get(keys[1])!.blobId!)
        const blob = toV1(fs.readFileSync(file))
        fs.writeFileSync(file, blob)
        d.prepare("UPDATE cacheness_entries SET stored_bytes = ?, checksum = ? WHERE key = ?").run(
          blob.length,
          bound(blob, keys[1]),
          keys[1]
        )
      })
      const result = yield* withCache(
        directory,
        {},
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return [
            yield* cache.get({ k: "inline" }),
            yield* cache.get({ k: "blob" }),
            (yield* cache.verify()).checksumMismatches
          ] as const
        })
      )
      assert.deepStrictEqual(result, [Option.some({ v: 1 }), Option.some(big), []])
    }))
})

describe("the decision on a stale entry (past its TTL, inside its grace)", () => {
  for (const kind of ["inline", "blob"] as const) {
    it.scoped(`has, get and getWithMetadata miss it; with allowStale get, getWithMetadata and cached serve it (${kind})`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const stored = kind === "blob" ? `${7}:${BIG}` : { n: 7, small: "x" }
        let runs = 0
        const fn = cached((n: number) => Effect.sync(() => (runs++, n)), {
          name: "stale-decision",
          ttl: "1 hour",
          staleWhileRevalidate: "1 hour",
          key: () => ({ shared: kind })
        })
        const observed = yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const key = yield* cache.put({ stale: kind }, stored, { ttl: "1 hour", grace: "1 hour" })
          // The memoised function's entry, stored the way cached stores it (with its grace).
          yield* fn(7)
          yield* TestClock.adjust("90 minutes")
          const withMeta = yield* cache.getWithMetadata(key, { allowStale: true })
          const result = {
            has: yield* cache.has(key),
            get: Option.isSome(yield* cache.get(key)),
            getWithMetadata: Option.isSome(yield* cache.getWithMetadata(key)),
            getAllowStale: Option.isSome(yield* cache.get(key, { allowStale: true })),
            getWithMetadataAllowStale: Option.isSome(withMeta) && withMeta.value.stale,
            cachedServesStale: (yield* fn(7)) === 7 && runs === 1
          }
          yield* TestClock.adjust("31 minutes")
          const gone = {
            getAllowStale: Option.isSome(yield* cache.get(key, { allowStale: true })),
            getWithMetadataAllowStale: Option.isSome(yield* cache.getWithMetadata(key, { allowStale: true }))
          }
          return { result, gone }
        }).pipe(Effect.provide(Cache.layer({ directory, ...manual })))
        assert.deepStrictEqual(observed.result, {
          has: false,
          get: false,
          getWithMetadata: false,
          getAllowStale: true,
          getWithMetadataAllowStale: true,
          cachedServesStale: true
        })
        assert.deepStrictEqual(observed.gone, { getAllowStale: false, getWithMetadataAllowStale: false })
      }))
  }
})
