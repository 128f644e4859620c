/**
 * The SQLite listing joins every row's params text, as stored, into one JSON array parsed once
 * (`entryColumnsJson`). These pin down that it gives exactly what parsing each text alone gives —
 * `listEntries` equals `list` mapped through `toEntry` — for texts that are one JSON value of any
 * shape, and, through the raw-row fallback, for texts that are not (several values, half a value,
 * two halves that would join up, not text at all), which must never shift params between rows.
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { toEntry } from "../src/metadata/entries.js"
import type { ListOptions } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { makeTempDir } from "./support/tmp.js"

/** Params texts that are each one JSON value: the joined array must give each back as it is. */
const VALID = [
  JSON.stringify({ region: "eu-west", user: 1, version: 3 }),
  JSON.stringify({ s: "a,b],[c\"d\\", nested: [[1], { x: [] }], u: "n\u00e9 \ud83d\ude00 \u2028" }),
  "  { \"padded\" : true }\n",
  "\"just a string, with a comma\"",
  "[1,2]",
  "-0",
  "12345678901234567890",
  "1.5e300",
  "null",
  "{}"
]

const setup = (params: ReadonlyArray<string | null>) =>
  Effect.gen(function*() {
    const dir = makeTempDir()
    yield* Effect.addFinalizer(() => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })))
    const filename = path.join(dir, "cache.db")
    const store = yield* MetadataStoreSqlite.make({ filename })
    for (let i = 0; i < params.length; i++) {
      yield* store.upsert(
        record(key(i), { params: params[i], createdAt: 1_000 + ((i * 7) % 5), namespace: i % 2 === 0 ? "" : "odd" })
      )
    }
    const same = (options: ListOptions = {}) =>
      Effect.gen(function*() {
        const entries = yield* store.listEntries(options)
        assert.deepStrictEqual(entries, (yield* store.list(options)).map(toEntry), JSON.stringify(options))
        return entries
      })
    return { filename, store, same }
  })

describe("SQLite listing: params joined into one parse", () => {
  it.scoped("gives every row its own params, for any JSON value, in every order and page", () =>
    Effect.gen(function*() {
      const params = [...VALID, null, ...VALID]
      const { same } = yield* setup(params)
      const all = yield* same()
      assert.deepStrictEqual(all.map((e) => e.params), params.map((p) => p === null ? null : JSON.parse(p)))
      yield* same({ orderBy: "createdAt", descending: true })
      yield* same({ limit: 4, offset: 3 })
      yield* same({ namespace: "odd", orderBy: "key" })
      yield* same({ namespace: "absent" })
    }))

  it.scoped("a params text that is not one JSON value is null for its row alone", () =>
    Effect.gen(function*() {
      const bad = ["1,2", "{bad", "\"open", "]", "1]", "[1", "", " ", "{\"a\":1},{\"b\":2}", "1],[2"]
      for (const text of bad) {
        const { same } = yield* setup([VALID[0], text, VALID[1]])
        const all = yield* same()
        assert.deepStrictEqual(
          all.map((e) => e.params),
          [JSON.parse(VALID[0]), null, JSON.parse(VALID[1])],
          JSON.stringify(text)
        )
      }
    }))

  it.scoped("two damaged texts that would join into one value do not move params between rows", () =>
    Effect.gen(function*() {
      // Joined with the separator between them they read as one string: ["x,y"].
      const { same } = yield* setup(["\"x", "y\"", VALID[0]])
      const all = yield* same()
      assert.deepStrictEqual(all.map((e) => e.params), [null, null, JSON.parse(VALID[0])])
    }))

  it.scoped("params that another writer left as a number or a BLOB read as each row alone reads them", () =>
    Effect.gen(function*() {
      const { filename, same } = yield* setup([VALID[0], VALID[1], VALID[2]])
      const db = new Database(filename)
      db.prepare("UPDATE cacheness_entries SET params = 0.30000000000000004 WHERE key = ?").run(key(1))
      db.prepare("UPDATE cacheness_entries SET params = CAST('{\"b\":1}' AS BLOB) WHERE key = ?").run(key(2))
      db.close()
      const all = yield* same()
      assert.deepStrictEqual(all.map((e) => e.params), [JSON.parse(VALID[0]), 0.30000000000000004, { b: 1 }])
    }))
})
