/**
 * The lease table is a `WITHOUT ROWID` table (one B-tree: a lease's take and its release each
 * write one page, not two). A database made before, with the rowid table and its key index, is
 * rebuilt when opened for writing, keeping the leases it holds; the statements are the same, so
 * both shapes take, refuse and release leases alike.
 */
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as path from "node:path"
import { MetadataStore } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { key, record } from "../src/testing/MetadataStoreSuite.js"
import { tempDir } from "./support/tmp.js"

const leaseTableSql = (filename: string): string => {
  const db = new Database(filename, { readonly: true })
  try {
    return db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cacheness_leases'`)
      .pluck().get() as string
  } finally {
    db.close()
  }
}

/** Puts back the lease table as releases before 2026-12 made it, holding `rows`. */
const makeRowidLeases = (filename: string, rows: ReadonlyArray<readonly [string, string, number]>) => {
  const db = new Database(filename)
  try {
    db.exec(`DROP TABLE cacheness_leases;
      CREATE TABLE cacheness_leases (key TEXT PRIMARY KEY NOT NULL, holder TEXT NOT NULL, expires_at INTEGER NOT NULL)`)
    const insert = db.prepare(`INSERT INTO cacheness_leases (key, holder, expires_at) VALUES (?, ?, ?)`)
    for (const row of rows) insert.run(...row)
  } finally {
    db.close()
  }
}

const withStore = <A, E>(filename: string, use: Effect.Effect<A, E, MetadataStore>) =>
  Effect.scoped(Effect.provide(use, MetadataStoreSqlite.layer({ filename })))

describe("the lease table (sqlite)", () => {
  it.scoped("a new database has a WITHOUT ROWID lease table", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "cache.db")
      yield* withStore(filename, Effect.flatMap(MetadataStore, (store) => store.acquireLease(key(1), "a", 10_000, 0)))
      assert.match(leaseTableSql(filename), /WITHOUT ROWID/)
    }))

  it.scoped("an older database's rowid lease table is rebuilt on open, its leases kept", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "cache.db")
      yield* withStore(filename, Effect.void)
      makeRowidLeases(filename, [[key(1), "old", 50_000], [key(2), "gone", 500]])
      assert.notMatch(leaseTableSql(filename), /WITHOUT ROWID/)
      yield* withStore(
        filename,
        Effect.gen(function*() {
          const store = yield* MetadataStore
          // Still held by "old" until 50 s; the expired one is taken over.
          assert.isFalse(yield* store.acquireLease(key(1), "new", 60_000, 1_000))
          assert.isTrue(yield* store.acquireLease(key(1), "old", 60_000, 1_000), "its holder renews it")
          assert.isTrue(yield* store.acquireLease(key(2), "new", 60_000, 1_000))
          // Stored and released in one commit, as a memoised miss does.
          const written = yield* store.upsert(record(key(1)), undefined, "old")
          assert.isTrue(written.leaseReleased)
          assert.isTrue(yield* store.acquireLease(key(1), "new", 60_000, 1_001), "free once stored")
        })
      )
      assert.match(leaseTableSql(filename), /WITHOUT ROWID/)
      const db = new Database(filename, { readonly: true })
      try {
        const rows = db.prepare(`SELECT key, holder FROM cacheness_leases ORDER BY key`).all()
        assert.deepStrictEqual(rows, [{ key: key(1), holder: "new" }, { key: key(2), holder: "new" }])
        assert.deepStrictEqual(
          db.prepare(`SELECT name FROM sqlite_master WHERE name LIKE 'cacheness_leases%' ORDER BY name`).pluck().all(),
          ["cacheness_leases"]
        )
      } finally {
        db.close()
      }
    }))

  it.scoped("a rowid lease table still works where it cannot be rebuilt (opened read-only)", () =>
    Effect.gen(function*() {
      const filename = path.join(yield* tempDir, "cache.db")
      yield* withStore(filename, Effect.void)
      makeRowidLeases(filename, [[key(1), "old", 50_000]])
      yield* Effect.scoped(Effect.provide(
        Effect.flatMap(MetadataStore, (store) => store.lookup(key(1))),
        MetadataStoreSqlite.layer({ filename, readOnly: true })
      ))
      assert.notMatch(leaseTableSql(filename), /WITHOUT ROWID/, "looking changes nothing")
    }))
})
