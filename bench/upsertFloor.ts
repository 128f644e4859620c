/**
 * What SQLite itself costs a batched put, part by part (issue 19's `putMany` floor): a cacheness
 * cache of 10,000 small entries is built and closed, then for each variant a copy of its file gets
 * 10,000 new rows (the same rows, new keys) in one transaction through bare better-sqlite3 —
 * cacheness's upsert one row to a statement (what `upsertMany` runs), the same 50 rows to a
 * statement (what it ran until 2026-12-02 evening), without the two AFTER INSERT triggers, without
 * the expiry index, a plain INSERT, and a bare two-column table of the same keys and values. Then
 * the read of the batch's current blob ids, both shapes. Variants interleaved round by round, each
 * on a fresh copy; CPU µs per row (user + system), the median and the minimum of ROUNDS.
 * `npx tsx bench/upsertFloor.ts [rounds]`.
 */
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as path from "node:path"
import { Cache } from "../src/index.js"
import { benchDir, fmt, keyOf, percentile, table, valueOf } from "./support.js"

const N = 10_000
const ROUNDS = Number(process.argv[2] ?? 9)
const TABLE = "cacheness_entries"
const COLUMNS = `key, namespace, description, format, codec, stored_bytes, raw_bytes, checksum, blob_id,
  inline_value, created_at, accessed_at, expires_at, hits, params, metadata, stale_until, tags`
// The statement of src/metadata/sqlite.ts (`upsert`), for `rows` rows.
const UPSERT = (rows: number) =>
  `INSERT INTO ${TABLE} (${COLUMNS}) VALUES ${
    Array.from({ length: rows }, () => `(${Array(18).fill("?").join(", ")})`).join(", ")
  }
  ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, description = excluded.description,
    format = excluded.format, codec = excluded.codec, stored_bytes = excluded.stored_bytes,
    raw_bytes = excluded.raw_bytes, checksum = excluded.checksum, blob_id = excluded.blob_id,
    inline_value = excluded.inline_value, created_at = excluded.created_at,
    accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, hits = 0,
    params = excluded.params, metadata = excluded.metadata, stale_until = excluded.stale_until,
    tags = excluded.tags`
const INSERT_TRIGGERS = [`DROP TRIGGER ${TABLE}_ai`, `DROP TRIGGER ${TABLE}_ns_ai`]

const cpu = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

type Row = Array<unknown>
interface Variant {
  readonly ddl: ReadonlyArray<string>
  /** Writes `rows` in the open transaction. */
  readonly write: (db: Database.Database, rows: ReadonlyArray<Row>) => () => void
}

const perRow = (sql: string) => (db: Database.Database, rows: ReadonlyArray<Row>) => {
  const statement = db.prepare(sql)
  return () => {
    for (const row of rows) statement.run(row)
  }
}
const chunked = (db: Database.Database, rows: ReadonlyArray<Row>) => {
  const statement = db.prepare(UPSERT(50))
  return () => {
    for (let i = 0; i < rows.length; i += 50) {
      const values: Array<unknown> = []
      for (let j = i; j < i + 50; j++) for (const v of rows[j]) values.push(v)
      statement.run(values)
    }
  }
}

const VARIANTS: Record<string, Variant> = {
  "upsert, 1 row a statement (upsertMany now)": { ddl: [], write: perRow(UPSERT(1)) },
  "upsert, 50 rows a statement (before)": { ddl: [], write: chunked },
  "1 row, no INSERT triggers": { ddl: INSERT_TRIGGERS, write: perRow(UPSERT(1)) },
  "50 rows, no INSERT triggers": { ddl: INSERT_TRIGGERS, write: chunked },
  "1 row, no expiry index": { ddl: [`DROP INDEX ${TABLE}_expires`], write: perRow(UPSERT(1)) },
  "1 row, plain INSERT (no ON CONFLICT)": {
    ddl: [],
    write: perRow(`INSERT INTO ${TABLE} (${COLUMNS}) VALUES (${Array(18).fill("?").join(", ")})`)
  },
  "bare table (key TEXT PRIMARY KEY, value BLOB)": {
    ddl: [
      `CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)`,
      `INSERT INTO kv SELECT key, inline_value FROM ${TABLE}`
    ],
    write: (db, rows) => {
      const statement = db.prepare("INSERT INTO kv VALUES (?, ?)")
      return () => {
        for (const row of rows) statement.run(row[0], row[9])
      }
    }
  }
}

const source = async (): Promise<string> => {
  const directory = benchDir("upsertfloor")
  await Effect.runPromise(
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.putMany(Array.from({ length: N }, (_, i) => [keyOf(i), valueOf(i)] as const))
    }).pipe(Effect.provide(Cache.layer({ directory, maxSize: null })))
  )
  return path.join(directory, "cacheness.db")
}

const run = (file: string, variant: Variant, rows: ReadonlyArray<Row>): number => {
  const copy = `${file}.copy`
  fs.copyFileSync(file, copy)
  const db = new Database(copy)
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.pragma("wal_autocheckpoint = 16384")
  for (const statement of variant.ddl) db.exec(statement)
  const write = db.transaction(variant.write(db, rows))
  const t = cpu()
  write.immediate()
  const us = (cpu() - t) * 1000 / rows.length
  db.close()
  for (const suffix of ["", "-wal", "-shm"]) fs.rmSync(copy + suffix, { force: true })
  return us
}

const file = await source()
const existing = new Database(file, { readonly: true })
const stored = existing.prepare(`SELECT ${COLUMNS} FROM ${TABLE}`).raw(true).all() as Array<Row>
// The rows of a second batch: the same values under new keys.
const rows = stored.map((row) => {
  const copy = row.slice()
  copy[0] = randomBytes(8).toString("hex")
  return copy
})
const samples = new Map(Object.keys(VARIANTS).map((name) => [name, [] as Array<number>]))
for (const variant of Object.values(VARIANTS)) run(file, variant, rows)
for (let r = 0; r < ROUNDS; r++) {
  for (const [name, variant] of Object.entries(VARIANTS)) samples.get(name)!.push(run(file, variant, rows))
}

// The blob ids a batch's keys hold now: 10,000 new keys and the 10,000 existing (inline) ones.
const reads = {
  "key IN (SELECT value FROM json_each(?)) (before)": existing.prepare(
    `SELECT key, blob_id FROM ${TABLE} WHERE key IN (SELECT value FROM json_each(?))`
  ).raw(true),
  "json_each join, rows with a blob only (now)": existing.prepare(
    `SELECT e.key, e.blob_id FROM json_each(?) AS j CROSS JOIN ${TABLE} AS e ON e.key = j.value WHERE e.blob_id IS NOT NULL`
  ).raw(true)
}
const readSamples: Array<Array<string>> = []
for (const [label, keys] of [["new keys", rows], ["existing keys", stored]] as const) {
  const json = JSON.stringify(keys.map((row) => row[0]))
  for (const [name, statement] of Object.entries(reads)) {
    statement.all(json)
    const xs: Array<number> = []
    for (let r = 0; r < ROUNDS; r++) {
      const t = cpu()
      statement.all(json)
      xs.push((cpu() - t) * 1000 / keys.length)
    }
    readSamples.push([`blob ids of ${label}: ${name}`, fmt(percentile(xs, 50), 2), fmt(Math.min(...xs), 2)])
  }
}
existing.close()
fs.rmSync(path.dirname(file), { recursive: true, force: true })

table(
  `SQLite's part of a batched put: 10,000 new rows into a 10,000-row cache, one transaction, CPU µs a row (${ROUNDS} rounds)`,
  [
    ["variant", "median", "min"],
    ...[...samples].map(([name, xs]) => [name, fmt(percentile(xs, 50), 2), fmt(Math.min(...xs), 2)]),
    ...readSamples
  ]
)
