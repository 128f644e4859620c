/**
 * SQLite's whole-cache counters since layout 7: the counters row counts the rows up to its mark,
 * the newest rows above it are added on reading and folded in by writers (`7_counter_tail`).
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { makeTempDir } from "./support/tmp.js"

const TABLE = "cacheness_entries"

/** What the rows add up to, counted directly. */
const scanned = (filename: string) => {
  const db = new Database(filename, { readonly: true })
  try {
    return db.prepare(`SELECT count(*) AS entries, coalesce(sum(stored_bytes), 0) AS totalBytes FROM ${TABLE}`)
      .get() as { entries: number; totalBytes: number }
  } finally {
    db.close()
  }
}

/** The counters row as stored (without the rows above its mark). */
const countersRow = (filename: string) => {
  const db = new Database(filename, { readonly: true })
  try {
    return db.prepare(`SELECT entries, bytes, counted_through AS mark FROM cacheness_counters`).get() as {
      entries: number
      bytes: number
      mark: number
    }
  } finally {
    db.close()
  }
}

const withDir = Effect.acquireRelease(
  Effect.sync(makeTempDir),
  (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))
)

describe("SQLite counters: a mark, and the rows above it counted on reading", () => {
  it.scoped("a put of a new entry does not write the counters row; the totals still count it", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* withDir, "cache.db")
      const store = yield* MetadataStoreSqlite.make({ filename })
      const before = countersRow(filename)
      const written = yield* store.upsert(record(key(1), { storedBytes: 70 }))
      assert.strictEqual(written.totalBytes, 70)
      assert.deepStrictEqual(countersRow(filename), before, "no counters page written by the put")
      const totals = yield* store.totals
      assert.strictEqual(totals.entries, 1)
      assert.strictEqual(totals.totalBytes, 70)
      assert.deepStrictEqual(yield* store.namespaceTotals(""), { entries: 1, totalBytes: 70 })
    }))

  it.scoped("a batch folds every row above the mark, and rebuilds a lost counters row", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* withDir, "cache.db")
      const store = yield* MetadataStoreSqlite.make({ filename })
      for (let i = 0; i < 5; i++) yield* store.upsert(record(key(i), { storedBytes: 10 }))
      const batch = (from: number, n: number) =>
        Array.from({ length: n }, (_, i) => ({ record: record(key(from + i), { storedBytes: 100 + i }) }))
      // Two overwrites (keys 3 and 4, above the mark) and 30 new rows.
      const written = yield* store.upsertMany(batch(3, 32))
      const expected = scanned(filename)
      assert.strictEqual(written.totalBytes, expected.totalBytes)
      const row = countersRow(filename)
      assert.deepStrictEqual({ entries: row.entries, totalBytes: row.bytes }, expected, "nothing left above the mark")
      const db = new Database(filename)
      assert.strictEqual(row.mark, db.prepare(`SELECT max(rowid) FROM ${TABLE}`).pluck().get())
      db.prepare(`DELETE FROM cacheness_counters`).run()
      db.close()
      const again = yield* store.upsertMany(batch(100, 3))
      assert.strictEqual(again.totalBytes, scanned(filename).totalBytes)
      const totals = yield* store.totals
      assert.deepStrictEqual({ entries: totals.entries, totalBytes: totals.totalBytes }, scanned(filename))
    }))

  it.scoped("stay exact through inserts, overwrites, deletes, reused rowids, folds and two connections", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* withDir, "cache.db")
      const a = yield* MetadataStoreSqlite.make({ filename })
      const b = yield* MetadataStoreSqlite.make({ filename })
      let seed = 7
      const random = (n: number) => {
        seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
        return seed % n
      }
      const check = (step: string) =>
        Effect.gen(function*() {
          const expected = scanned(filename)
          for (const store of [a, b]) {
            const totals = yield* store.totals
            assert.deepStrictEqual({ entries: totals.entries, totalBytes: totals.totalBytes }, expected, step)
            assert.deepStrictEqual(yield* store.namespaceTotals(""), expected, step)
          }
        })
      for (let step = 0; step < 400; step++) {
        const store = random(2) === 0 ? a : b
        const op = random(10)
        const k = key(random(60))
        if (op < 4) {
          yield* store.upsert(record(k, { storedBytes: 1 + random(1_000) }))
        } else if (op < 5) {
          const n = 1 + random(40)
          yield* store.upsertMany(
            Array.from({ length: n }, () => ({ record: record(key(random(60)), { storedBytes: 1 + random(1_000) }) }))
          )
        } else if (op < 7) {
          yield* store.remove({ keys: [k] })
        } else if (op < 8) {
          // The newest rows: the next insert then reuses a rowid at or below the mark.
          const db = new Database(filename, { readonly: true })
          const newest = db.prepare(`SELECT key FROM ${TABLE} ORDER BY rowid DESC LIMIT ?`).pluck().all(
            1 + random(20)
          ) as Array<string>
          db.close()
          yield* store.remove({ keys: newest })
        } else if (op < 9) {
          const found = yield* store.lookup(k)
          if (found._tag === "Some") {
            yield* store.repairSize(k, found.value.blobId, found.value.checksum, 1 + random(1_000))
          }
        } else if (random(8) === 0) {
          yield* store.clear
        } else {
          yield* store.upsert(record(k, { storedBytes: 1 + random(1_000), namespace: "ns" }))
        }
        yield* check(`step ${step} (op ${op})`)
      }
      const row = countersRow(filename)
      assert.isAtMost(scanned(filename).entries - row.entries, 60, "the tail stays short")
      yield* a.recount
      yield* check("after recount")
    }))

  it.scoped("a layout-6 database migrates: its counts kept, later writes counted", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* withDir, "cache.db")
      yield* Effect.scoped(Effect.gen(function*() {
        const store = yield* MetadataStoreSqlite.make({ filename })
        for (let i = 0; i < 40; i++) yield* store.upsert(record(key(i), { storedBytes: 10 + i }))
      }))
      // Back to layout 6 as it was: the counters row counting every row, kept by the old triggers,
      // no mark.
      const db = new Database(filename)
      db.exec(`UPDATE cacheness_counters SET
          entries = (SELECT count(*) FROM ${TABLE}), bytes = (SELECT sum(stored_bytes) FROM ${TABLE});
        DROP TRIGGER ${TABLE}_ai; DROP TRIGGER ${TABLE}_ad; DROP TRIGGER ${TABLE}_au;
        ALTER TABLE cacheness_counters DROP COLUMN counted_through;
        DELETE FROM cacheness_migrations WHERE migration_id = 7;
        CREATE TRIGGER ${TABLE}_ai AFTER INSERT ON ${TABLE} BEGIN
          UPDATE cacheness_counters SET entries = entries + 1, bytes = bytes + NEW.stored_bytes WHERE id = 1;
        END;
        CREATE TRIGGER ${TABLE}_ad AFTER DELETE ON ${TABLE} BEGIN
          UPDATE cacheness_counters SET entries = entries - 1, bytes = bytes - OLD.stored_bytes WHERE id = 1;
        END;
        CREATE TRIGGER ${TABLE}_au AFTER UPDATE OF stored_bytes ON ${TABLE} BEGIN
          UPDATE cacheness_counters SET bytes = bytes - OLD.stored_bytes + NEW.stored_bytes WHERE id = 1;
        END;`)
      // A layout-6 writer's own change, counted by the old triggers.
      db.prepare(`DELETE FROM ${TABLE} WHERE key = ?`).run(key(0))
      assert.strictEqual(db.prepare(`SELECT max(migration_id) FROM cacheness_migrations`).pluck().get(), 6)
      db.close()
      const store = yield* MetadataStoreSqlite.make({ filename })
      const expected = scanned(filename)
      assert.strictEqual(expected.entries, 39)
      const totals = yield* store.totals
      assert.deepStrictEqual({ entries: totals.entries, totalBytes: totals.totalBytes }, expected)
      assert.strictEqual(countersRow(filename).mark, 40, "every row then counted lies at or below the mark")
      // Deletes and size changes of migrated rows, and new rows, all counted.
      yield* store.remove({ keys: [key(1), key(2)] })
      yield* store.upsert(record(key(3), { storedBytes: 500 }))
      for (let i = 100; i < 130; i++) yield* store.upsert(record(key(i), { storedBytes: 7 }))
      const after = yield* store.totals
      assert.deepStrictEqual({ entries: after.entries, totalBytes: after.totalBytes }, scanned(filename))
    }))
})
