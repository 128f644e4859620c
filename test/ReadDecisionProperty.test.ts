/**
 * Issue 17: `has`, `get`, `getWithMetadata` and a memoised hit (`cached`) take one read decision,
 * so for any mix of entry states in one cache — fresh, expired, missing blob, checksum mismatch,
 * unverifiable signature, unknown format — the four agree with each other and with the model.
 */
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as fc from "fast-check"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, beforeAll, describe, it } from "vitest"
import * as Cache from "../src/Cache.js"
import { bindKey } from "../src/cache/integrity.js"
import { cached } from "../src/index.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import { incompressible } from "../src/testing/CacheSuite.js"

const KEY = "read-decision-signing-key-0123456789"
const OTHER_KEY = "another-signing-key-9876543210fedcba"
const manual = { cleanupOnOpen: false, cleanupInterval: "100000 days" } as const
const OBSERVERS = ["has", "get", "getWithMetadata", "cached"] as const

type StateName = "fresh" | "expired" | "missing blob" | "checksum mismatch" | "unknown format"
type Reader = "none" | "key" | "other key"
interface Entry {
  readonly state: StateName
  readonly kind: "inline" | "blob"
  readonly signed: boolean
}
type Row = { key: string; blobId: string | null }

const BIG = incompressible(40_000)
let hasher: Effect.Effect.Success<ReturnType<typeof HasherXxhash.make>> | undefined

const db = <A>(directory: string, use: (db: Database.Database) => A): A => {
  const handle = new Database(path.join(directory, "cacheness.db"))
  try {
    return use(handle)
  } finally {
    handle.close()
  }
}
const rows = (directory: string): Array<Row> =>
  !fs.existsSync(path.join(directory, "cacheness.db"))
    ? []
    : db(directory, (d) => d.prepare("SELECT key, blob_id AS blobId FROM cacheness_entries").all() as Array<Row>)
const blobPath = (directory: string, id: string) => path.join(directory, "blobs", id.slice(0, 2), id.slice(2, 4), id)

/** The stored bytes of a row, and a way to write them back. */
const bytesOf = (directory: string, row: Row) => {
  if (row.blobId !== null) {
    const file = blobPath(directory, row.blobId)
    return { bytes: new Uint8Array(fs.readFileSync(file)), write: (bytes: Uint8Array) => fs.writeFileSync(file, bytes) }
  }
  const { inline } = db(
    directory,
    (d) =>
      d.prepare("SELECT inline_value AS inline FROM cacheness_entries WHERE key = ?").get(row.key) as { inline: Buffer }
  )
  return {
    bytes: new Uint8Array(inline),
    write: (bytes: Uint8Array) =>
      db(
        directory,
        (d) => d.prepare("UPDATE cacheness_entries SET inline_value = ? WHERE key = ?").run(Buffer.from(bytes), row.key)
      )
  }
}

const damage: Record<StateName, (directory: string, row: Row) => void> = {
  fresh: () => {},
  expired: (directory, row) =>
    db(directory, (d) => d.prepare("UPDATE cacheness_entries SET expires_at = 0 WHERE key = ?").run(row.key)),
  "missing blob": (directory, row) => fs.rmSync(blobPath(directory, row.blobId!)),
  "checksum mismatch": (directory, row) => {
    const stored = bytesOf(directory, row)
    stored.bytes[stored.bytes.length - 2] ^= 0x01
    stored.write(stored.bytes)
  },
  // A compression codec id this release does not know, under a checksum that matches: written
  // by a newer release, not damaged.
  "unknown format": (directory, row) => {
    const stored = bytesOf(directory, row)
    stored.bytes[3] = 200
    stored.write(stored.bytes)
    const checksum = bindKey(hasher!.hashBytes(stored.bytes), row.key)
    db(directory, (d) => d.prepare("UPDATE cacheness_entries SET checksum = ? WHERE key = ?").run(checksum, row.key))
  }
}

const served = (entry: Entry, reader: Reader) =>
  entry.state === "fresh" && (entry.signed ? reader === "key" : reader === "none")

const readerConfig = (reader: Reader): Cache.CacheConfig =>
  reader === "none" ? {} : { signing: { key: reader === "key" ? KEY : OTHER_KEY } }

const withCache = <A, E>(directory: string, config: Cache.CacheConfig, use: Effect.Effect<A, E, Cache.Cache>) =>
  Effect.scoped(Effect.provide(use, Cache.layer({ directory, ...manual, ...config }))).pipe(
    Effect.provide(Logger.replace(Logger.defaultLogger, Logger.none))
  )

const valueOf = (kind: Entry["kind"], n: number) => kind === "blob" ? `${n}:${BIG}` : { n, small: "x".repeat(100) }

/** A memoised function of observer `name`, built afresh (no in-process memo), counting its runs. */
const memoised = (name: string, kind: Entry["kind"]) => {
  const counter = { runs: 0 }
  const fn = cached((n: number) => Effect.sync(() => (counter.runs++, valueOf(kind, n))), { name, ttl: "1 hour" })
  return { fn, counter }
}

const entry: fc.Arbitrary<Entry> = fc.record({
  state: fc.constantFrom<StateName>("fresh", "expired", "missing blob", "checksum mismatch", "unknown format"),
  kind: fc.constantFrom<Entry["kind"]>("inline", "blob"),
  signed: fc.boolean()
}).map((e) => ({
  ...e,
  // A missing blob needs a blob; a re-checksummed header cannot be re-signed without the signer.
  kind: e.state === "missing blob" ? "blob" : e.kind,
  signed: e.state === "unknown format" ? false : e.signed
}))

const run = (entries: ReadonlyArray<Entry>, reader: Reader) =>
  Effect.gen(function*() {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-decision-"))
    try {
      // Each entry is stored once per observer (a read may remove what it finds broken).
      const keys: Array<Record<string, string>> = []
      for (const [i, e] of entries.entries()) {
        const byObserver: Record<string, string> = {}
        for (const observer of OBSERVERS) {
          const before = new Set(rows(directory).map((r) => r.key))
          yield* withCache(
            directory,
            e.signed ? { signing: { key: KEY } } : {},
            memoised(`${observer}-${e.kind}`, e.kind).fn(i)
          )
          const row = rows(directory).find((r) => !before.has(r.key))!
          assert.strictEqual(row.blobId !== null, e.kind === "blob", "stored as intended")
          damage[e.state](directory, row)
          byObserver[observer] = row.key
        }
        keys.push(byObserver)
      }
      const observed = yield* withCache(
        directory,
        readerConfig(reader),
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const out: Array<Record<string, boolean>> = []
          for (const [i, e] of entries.entries()) {
            const k = keys[i]! as Record<string, Cache.CacheKey>
            const memo = memoised(`cached-${e.kind}`, e.kind)
            yield* memo.fn(i)
            out.push({
              has: yield* cache.has(k.has!),
              get: Option.isSome(yield* cache.get(k.get!)),
              getWithMetadata: Option.isSome(yield* cache.getWithMetadata(k.getWithMetadata!)),
              cached: memo.counter.runs === 0
            })
          }
          return out
        })
      )
      for (const [i, e] of entries.entries()) {
        const expected = served(e, reader)
        assert.deepStrictEqual(
          observed[i],
          { has: expected, get: expected, getWithMetadata: expected, cached: expected },
          `${JSON.stringify(e)} read with ${reader}`
        )
      }
    } finally {
      fs.rmSync(directory, { recursive: true, force: true })
    }
  })

describe("one read decision (property)", () => {
  beforeAll(async () => {
    hasher = await Effect.runPromise(HasherXxhash.make())
  })

  it("has, get, getWithMetadata and cached agree for random sequences of entry states", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(entry, { minLength: 1, maxLength: 4 }),
        fc.constantFrom<Reader>("none", "key", "other key"),
        (entries, reader) => Effect.runPromise(run(entries, reader))
      ),
      { numRuns: 12 }
    )
  }, 600_000)
})
