/**
 * What a signature covers (issue 16 item 12): besides key and bytes, every row field a reader
 * trusts — expiry, namespace, description, format, codec, sizes, key params, user metadata. A
 * row with any of them rewritten is a miss, removed with a warning; forged params are never
 * matched by `invalidateWhere`; a signature of the first scheme is not accepted.
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as Crypto from "node:crypto"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { incompressible } from "../src/testing/CacheSuite.js"
import { pgDescribe, pgScopedSchema, pgUrl } from "./support/postgres.js"
import { tempDir } from "./support/tmp.js"

const KEY = "signing-coverage-key-0123456789abcdef"
const signing = { signing: { key: KEY } } as const
/** The victim lives in namespace "ns": part of its identity. */
const NS = { namespace: "ns" } as const
const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const

/** Runs `use` on a cache in `directory`, collecting warning messages. */
const withCache = <A, E>(directory: string, config: Cache.CacheConfig, use: Effect.Effect<A, E, Cache.Cache>) =>
  Effect.gen(function*() {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message[0] : message))
    })
    const result = yield* Effect.scoped(Effect.provide(use, Cache.layer({ directory, ...manual, ...config }))).pipe(
      Effect.provide(Logger.replace(Logger.defaultLogger, logger))
    )
    return { result, warnings }
  })

const sql = <A>(directory: string, use: (db: Database.Database) => A): A => {
  const db = new Database(path.join(directory, "cacheness.db"))
  try {
    return use(db)
  } finally {
    db.close()
  }
}
const run = (directory: string, text: string, ...args: Array<unknown>) =>
  sql(directory, (db) => db.prepare(text).run(...args))
const keys = (directory: string) =>
  sql(
    directory,
    (db) =>
      (db.prepare("SELECT key FROM cacheness_entries ORDER BY key").all() as Array<{ key: string }>).map((r) => r.key)
  )

const BIG = incompressible(40_000)
const value = (kind: "inline" | "blob", n: number) => kind === "inline" ? { n } : `${n}:${BIG}`

/** A victim and a bystander, both signed; the victim's key. */
const seed = (directory: string, kind: "inline" | "blob") =>
  Effect.map(
    withCache(
      directory,
      signing,
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        yield* cache.put({ k: "bystander", admin: true }, value(kind, 2), { ttl: "1 hour" })
        return yield* cache.put({ k: "victim" }, value(kind, 1), {
          ttl: "1 hour",
          namespace: "ns",
          description: "scores"
        })
      })
    ),
    (r) => r.result
  )

const tamperings: ReadonlyArray<readonly [string, (directory: string, key: string) => void]> = [
  ["expires_at set to NULL", (d, key) => run(d, "UPDATE cacheness_entries SET expires_at = NULL WHERE key = ?", key)],
  [
    "expires_at moved later",
    (d, key) => run(d, "UPDATE cacheness_entries SET expires_at = expires_at + 1000 WHERE key = ?", key)
  ],
  [
    "params rewritten",
    (d, key) =>
      run(
        d,
        "UPDATE cacheness_entries SET params = (SELECT params FROM cacheness_entries WHERE key <> ?) WHERE key = ?",
        key,
        key
      )
  ],
  [
    "description rewritten",
    (d, key) => run(d, "UPDATE cacheness_entries SET description = 'forged' WHERE key = ?", key)
  ],
  ["namespace rewritten", (d, key) => run(d, "UPDATE cacheness_entries SET namespace = 'other' WHERE key = ?", key)],
  [
    "user metadata planted",
    (d, key) => run(d, "UPDATE cacheness_entries SET metadata = '{\"admin\":true}' WHERE key = ?", key)
  ],
  ["format column rewritten", (d, key) => run(d, "UPDATE cacheness_entries SET format = 'forged' WHERE key = ?", key)],
  [
    "raw size rewritten",
    (d, key) => run(d, "UPDATE cacheness_entries SET raw_bytes = raw_bytes + 1 WHERE key = ?", key)
  ]
]

describe("a signature covers the row", () => {
  for (const [name, tamper] of tamperings) {
    for (const kind of ["inline", "blob"] as const) {
      it.scoped(`${name} (${kind}): a miss, the entry removed, a warning; the bystander intact`, () =>
        Effect.gen(function*() {
          const directory = yield* tempDir
          const victim = yield* seed(directory, kind)
          tamper(directory, victim)
          const { result, warnings } = yield* withCache(
            directory,
            signing,
            Effect.gen(function*() {
              const cache = yield* Cache.Cache
              return [
                yield* cache.has({ k: "victim" }, NS),
                yield* cache.getWithMetadata({ k: "victim" }, NS),
                yield* cache.get({ k: "victim" }, NS),
                yield* cache.get({ k: "bystander", admin: true })
              ] as const
            })
          )
          assert.isFalse(result[0], "has")
          assert.isTrue(Option.isNone(result[1]), "getWithMetadata")
          assert.isTrue(Option.isNone(result[2]), "get")
          assert.deepStrictEqual(result[3], Option.some(value(kind, 2)))
          assert.isFalse(keys(directory).includes(victim), "the tampered entry is removed")
          assert.isTrue(warnings.some((w) => w.includes(victim) && w.includes("signature")), warnings.join("\n"))
        }))
    }
  }

  it.scoped("invalidateWhere by params does not match forged params; genuine ones still match", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const victim = yield* seed(directory, "blob")
      // The victim's params become the bystander's ({ k: "bystander", admin: true }).
      tamperings[2]![1](directory, victim)
      const { result } = yield* withCache(
        directory,
        signing,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return yield* cache.invalidateWhere({ params: { admin: true } })
        })
      )
      assert.strictEqual(result, 1, "only the genuine entry matched")
      assert.deepStrictEqual(keys(directory), [victim], "the forged row was not removed by its forged params")
    }))

  it.scoped("touch re-signs: a touched entry reads back, and touch does not launder a tampered row", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const victim = yield* seed(directory, "inline")
      const touched = yield* withCache(
        directory,
        signing,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const renewed = yield* cache.touch({ k: "victim" }, "2 hours", NS)
          const entry = yield* cache.getWithMetadata({ k: "victim" }, NS)
          return { renewed, entry }
        })
      )
      assert.isTrue(touched.result.renewed)
      assert.deepStrictEqual(Option.map(touched.result.entry, (e) => e.value), Option.some(value("inline", 1)))
      assert.deepStrictEqual(touched.warnings, [])
      tamperings[3]![1](directory, victim)
      const laundered = yield* withCache(
        directory,
        signing,
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          return [yield* cache.touch({ k: "victim" }, "3 hours", NS), yield* cache.get({ k: "victim" }, NS)] as const
        })
      )
      assert.isFalse(laundered.result[0], "a tampered row is not renewed")
      assert.isTrue(Option.isNone(laundered.result[1]), "and still rejected")
    }))

  it.scoped("an entry signed under the first scheme (key and bytes only) is a miss, removed, with a warning that says why", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const victim = yield* seed(directory, "inline")
      // What a previous release wrote: HMAC(domain v1, key, length, bytes).
      sql(directory, (db) => {
        const { inline } = db.prepare("SELECT inline_value AS inline FROM cacheness_entries WHERE key = ?").get(
          victim
        ) as { inline: Buffer }
        const length = Buffer.alloc(8)
        length.writeBigUInt64BE(BigInt(inline.length))
        const mac = Crypto.createHmac("sha256", Buffer.from(KEY)).update("cacheness-entry-v1\0").update(victim).update(
          length
        )
          .update(inline).digest("hex")
        db.prepare("UPDATE cacheness_entries SET checksum = ? WHERE key = ?").run(`hmac-sha256:${mac}`, victim)
      })
      const { result, warnings } = yield* withCache(
        directory,
        signing,
        Effect.flatMap(Cache.Cache, (c) => c.get({ k: "victim" }, NS))
      )
      assert.isTrue(Option.isNone(result))
      assert.isFalse(keys(directory).includes(victim))
      assert.isTrue(
        warnings.some((w) => w.includes(victim) && w.includes("previous signing scheme")),
        warnings.join("\n")
      )
    }))
})

/** A signed cache on each metadata backend: values, params and metadata round-trip, touch renews. */
const roundTrip = (layer: Layer.Layer<Cache.Cache, Cache.CacheError>) =>
  Effect.gen(function*() {
    const result = yield* Effect.scoped(Effect.provide(
      Effect.gen(function*() {
        const cache = yield* Cache.Cache
        yield* cache.put({ k: "inline", tag: "x" }, { n: 1 }, { ttl: "1 hour", namespace: "ns", description: "d" })
        yield* cache.put({ k: "blob", tag: "x" }, `b:${BIG}`, { ttl: null })
        const touched = yield* cache.touch({ k: "inline", tag: "x" }, "2 hours", { namespace: "ns" })
        const read = [
          yield* cache.has({ k: "inline", tag: "x" }, { namespace: "ns" }),
          yield* cache.has({ k: "blob", tag: "x" }),
          Option.map(
            yield* cache.getWithMetadata({ k: "inline", tag: "x" }, { namespace: "ns" }),
            (e) => [e.value, e.entry.description, e.entry.namespace]
          ),
          Option.isSome(yield* cache.get({ k: "blob", tag: "x" }))
        ]
        const removed = yield* cache.invalidateWhere({ params: { tag: "x" } })
        return { touched, read, removed }
      }),
      layer
    ))
    assert.deepStrictEqual(result, {
      touched: true,
      read: [true, true, Option.some([{ n: 1 }, "d", "ns"]), true],
      removed: 2
    })
  })

describe("signed caches on every metadata backend", () => {
  it.scoped("memory", () => roundTrip(Cache.layerMemory({ ...manual, ...signing })))
  for (const backend of ["sqlite", "json"] as const) {
    it.scoped(
      backend,
      () =>
        Effect.flatMap(
          tempDir,
          (directory) => roundTrip(Cache.layer({ ...manual, ...signing, directory, metadataBackend: backend }))
        )
    )
  }
})

pgDescribe("signed cache on PostgreSQL", () => {
  it.scoped("postgres", () =>
    Effect.flatMap(
      pgScopedSchema("signing"),
      (schema) =>
        roundTrip(
          Cache.layer({
            ...manual,
            ...signing,
            metadataBackend: "postgres",
            blobs: "postgres",
            postgres: { url: pgUrl, schema }
          })
        )
    ))
})
