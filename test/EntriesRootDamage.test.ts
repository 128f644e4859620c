// A damaged root page of the entries table (or of one of its indexes) in a real database file:
// before the fix the open-time check read only the header, schema and bookkeeping tables, so every
// get, put and verify failed with `MetadataError` Corrupt on every open. Now the open reads one row
// through the table and each index, finds the damage, and moves the file aside as for other damage.
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import { captureWarnings } from "./support/logs.js"
import { tempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null, defaultTtl: null } as const

const withCache = <A, E>(directory: string, f: (cache: Cache.Cache.Service) => Effect.Effect<A, E>) =>
  Effect.scoped(
    Effect.flatMap(Layer.build(Cache.layer({ directory, ...quiet })), (context) => f(Context.get(context, Cache.Cache)))
  )

/** Overwrites the start of the root page of `name` (a table or an index) with garbage. */
const damageRootPage = (file: string, name: string) => {
  const db = new Database(file)
  db.pragma("wal_checkpoint(TRUNCATE)")
  const root = db.prepare("SELECT rootpage FROM sqlite_master WHERE name = ?").pluck().get(name) as number
  const pageSize = db.pragma("page_size", { simple: true }) as number
  db.close()
  const fd = fs.openSync(file, "r+")
  fs.writeSync(fd, Buffer.alloc(64, 0xff), 0, 64, (root - 1) * pageSize)
  fs.closeSync(fd)
}

describe("a damaged entries-table root page", () => {
  for (const target of ["cacheness_entries", "cacheness_entries_expires"]) {
    it.scoped(`${target}: moved aside at open with a warning; get, put and verify work`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* withCache(directory, (cache) =>
          Effect.forEach(
            Array.from({ length: 300 }, (_, i) => i),
            (i) => cache.put({ k: i }, `value ${i}`, { ttl: "1 hour" }),
            { discard: true }
          ))
        const file = path.join(directory, "cacheness.db")
        damageRootPage(file, target)
        const { result, warnings } = yield* captureWarnings(withCache(directory, (cache) =>
          Effect.gen(function*() {
            const miss = yield* cache.get({ k: 1 })
            yield* cache.put({ k: "new" }, "fresh")
            const hit = yield* cache.get({ k: "new" })
            const report = yield* cache.verify({ repair: true })
            return { miss, hit, report }
          })))
        assert.isTrue(Option.isNone(result.miss), "the entries went with the damaged file")
        assert.deepStrictEqual(result.hit, Option.some("fresh"))
        assert.strictEqual(result.report.checked, 1)
        assert.isTrue(warnings.some((w) => w.includes("is damaged") && w.includes("moved to")), warnings.join("\n"))
        assert.isTrue(fs.readdirSync(directory).some((name) => name.startsWith("cacheness.db.corrupt-")))
      }))
  }

  it.scoped(
    "an intact cache of 10,000 entries opens as before: nothing moved, the check costs milliseconds",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        yield* withCache(directory, (cache) =>
          Effect.forEach(
            Array.from({ length: 10_000 }, (_, i) => i),
            (i) => cache.put({ k: i }, `value ${i}`, { ttl: "1 hour" }),
            { discard: true }
          ))
        const file = path.join(directory, "cacheness.db")
        // The queries the open-time check runs, timed alone.
        const db = new Database(file, { readonly: true })
        const started = process.hrtime.bigint()
        db.prepare("SELECT rowid FROM cacheness_entries NOT INDEXED LIMIT 1").all()
        for (
          const index of db.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cacheness_entries'"
          ).pluck().all() as Array<string>
        ) {
          const column = db.prepare("SELECT name FROM pragma_index_info(?) ORDER BY seqno LIMIT 1").pluck().get(
            index
          ) as string | undefined
          if (column !== undefined) {
            db.prepare(
              `SELECT 1 FROM cacheness_entries INDEXED BY "${index}" WHERE "${column}" IS NOT NULL AND "${column}" <> '' ORDER BY "${column}" LIMIT 1`
            ).all()
          }
        }
        const checkMs = Number(process.hrtime.bigint() - started) / 1e6
        db.close()
        const opened = process.hrtime.bigint()
        const { result, warnings } = yield* captureWarnings(withCache(directory, (cache) => cache.get({ k: 9_999 })))
        const openMs = Number(process.hrtime.bigint() - opened) / 1e6
        console.log(
          `EntriesRootDamage: 10,000 entries: check ${checkMs.toFixed(2)} ms, open + get + close ${
            openMs.toFixed(1)
          } ms`
        )
        assert.deepStrictEqual(result, Option.some("value 9999"))
        assert.deepStrictEqual(warnings, [])
        assert.isBelow(checkMs, 50)
        assert.isFalse(
          fs.readdirSync(directory).some((name) => name.includes("corrupt"))
        )
      }),
    120_000
  )
})
