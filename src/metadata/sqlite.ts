/**
 * The SQLite metadata store, the embedded default.
 *
 * The database is opened through `@effect/sql-sqlite-node`, whose Migrator creates and upgrades the
 * layout. The per-entry statements (lookup, upsert, touch, access batches) run on a second,
 * dedicated better-sqlite3 connection with prepared statements: the generic `SqlClient` path spends
 * a span, a prepare-cache lookup and a semaphore on every statement, which alone exceeds the
 * ~18 µs budget of a cache hit. WAL lets both connections, and other processes, share the file.
 *
 * Hits and access times are batched in memory and written in one transaction per flush (every
 * `flushInterval`, before any aggregate query, and when the layer closes) instead of a write per
 * read.
 *
 * @since 0.1.0
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import * as Migrator from "@effect/sql/Migrator"
import * as SqlClient from "@effect/sql/SqlClient"
import Database from "better-sqlite3"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import type { CacheEntry } from "../schema/CacheEntry.js"
import { daemonClock, flushBeforeExit } from "../shared/daemonClock.js"
import * as NamespaceKey from "../shared/namespaceKey.js"
import { NotSync } from "../shared/sync.js"
import { AccessBatch, type TakenAccesses } from "./accessBatch.js"
import {
  entriesFromColumns,
  ENTRY_ROW_COLUMNS,
  LISTING_COLUMNS,
  LISTING_OWN,
  type ListingDefaults,
  parseJson,
  parseTags,
  tagsJson,
  upsertValues
} from "./entries.js"
import { make as makeMetadataStore } from "./make.js"
import type {
  EntryFilter,
  EntryOrder,
  EntryRecord,
  ListOptions,
  PathFingerprint,
  RemovedCount,
  RemovedRef,
  StoredValue,
  TableDefinition,
  TableMatch,
  TableRow,
  Totals,
  UpsertItem
} from "./service.js"
import { MetadataError, MetadataStore } from "./service.js"
import * as TableSql from "./tablesSql.js"

/**
 * @since 0.1.0
 * @category models
 */
export interface SqliteStoreOptions {
  /** Path of the database file. */
  readonly filename: string
  /** How long a writer waits for another process's lock. Default 10 seconds. */
  readonly busyTimeout?: Duration.DurationInput | undefined
  /** How often batched hits and access times are written. Default 1 second. */
  readonly flushInterval?: Duration.DurationInput | undefined
  /** Custom metadata tables, created when missing. */
  readonly tables?: ReadonlyArray<TableDefinition> | undefined
  /**
   * Open for looking only: the file must exist and is never written, moved or migrated, no file
   * is created beside it, hits and access times are not recorded, and a damaged file is a
   * `Corrupt` error instead of being moved aside. Writes fail.
   */
  readonly readOnly?: boolean | undefined
}

/**
 * The newest layout this code knows. A database migrated further by a newer release is refused.
 *
 * @since 0.1.0
 * @category constants
 */
export const LAYOUT_VERSION = 7

const TABLE = "cacheness_entries"
const NAMESPACE_COUNTERS = "cacheness_namespace_counters"
const FINGERPRINTS = "cacheness_fingerprints"
const TAGS = "cacheness_tags"

/** The rows above the counters' mark folded into the counters row (see "7_counter_tail"). */
const FOLD = `UPDATE cacheness_counters SET
  entries = entries + (SELECT count(*) FROM ${TABLE} WHERE rowid > cacheness_counters.counted_through),
  bytes = bytes + (SELECT coalesce(sum(stored_bytes), 0) FROM ${TABLE} WHERE rowid > cacheness_counters.counted_through),
  counted_through = max(counted_through, (SELECT coalesce(max(rowid), 0) FROM ${TABLE}))
  WHERE id = 1`

/** The lease table: one B-tree keyed by `key` (a rowid table would add its key's index). */
const LEASES_TABLE = `CREATE TABLE IF NOT EXISTS cacheness_leases (
      key TEXT PRIMARY KEY NOT NULL,
      holder TEXT NOT NULL,
      expires_at INTEGER NOT NULL
    ) WITHOUT ROWID`

/**
 * Rebuilds a lease table made before 2026-12 (a rowid table with an index on its key) as
 * `LEASES_TABLE`, keeping its rows, in one transaction. Taking a lease and releasing it then each
 * write one page instead of two: ~10 µs of CPU less per leased memoised miss (measured on bare
 * better-sqlite3). No layout version: the columns and every statement are the same, so releases
 * before and after this one use either table. Best effort: a database busy past the timeout (or
 * otherwise unwritable) keeps its table until a later open.
 */
const leasesWithoutRowid = (db: Database.Database) => {
  const rowidTable = () => {
    const sql = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'cacheness_leases'`)
      .pluck().get()
    return typeof sql === "string" && !/\bWITHOUT\s+ROWID\b/i.test(sql)
  }
  try {
    if (!rowidTable()) return
    db.transaction(() => {
      // Another process may have rebuilt it since the look above.
      if (!rowidTable()) return
      db.exec(`${LEASES_TABLE.replace("cacheness_leases", "cacheness_leases_rebuilt")};
        INSERT INTO cacheness_leases_rebuilt (key, holder, expires_at) SELECT key, holder, expires_at FROM cacheness_leases;
        DROP TABLE cacheness_leases;
        ALTER TABLE cacheness_leases_rebuilt RENAME TO cacheness_leases`)
    }).immediate()
  } catch {
    // Kept as it is: the leases work the same, one page dearer.
  }
}

const migrations: Record<string, Effect.Effect<void, unknown, SqlClient.SqlClient>> = {
  "1_entries": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${TABLE} (
      key TEXT PRIMARY KEY NOT NULL,
      namespace TEXT NOT NULL DEFAULT '',
      description TEXT,
      format TEXT NOT NULL,
      codec TEXT NOT NULL,
      stored_bytes INTEGER NOT NULL,
      raw_bytes INTEGER NOT NULL,
      checksum TEXT NOT NULL,
      blob_id TEXT,
      inline_value BLOB,
      created_at INTEGER NOT NULL,
      accessed_at INTEGER NOT NULL,
      expires_at INTEGER,
      hits INTEGER NOT NULL DEFAULT 0,
      params TEXT,
      metadata TEXT
    )`)
    // Only expiry gets an index (cleanup must not scan a huge cache). Each index costs every put
    // ~10–15 µs; LRU eviction and listing by namespace are rare and a scan serves them.
    yield* sql.unsafe(
      `CREATE INDEX IF NOT EXISTS ${TABLE}_expires ON ${TABLE}(expires_at) WHERE expires_at IS NOT NULL`
    )
    // One row of counters, kept by triggers: entry count and total size stay exact across
    // processes, so `stats` and the size-limit check read one row instead of scanning the table.
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS cacheness_counters (
      id INTEGER PRIMARY KEY CHECK (id = 1),
      entries INTEGER NOT NULL, bytes INTEGER NOT NULL, hits INTEGER NOT NULL, misses INTEGER NOT NULL
    )`)
    yield* sql.unsafe(`INSERT OR IGNORE INTO cacheness_counters VALUES (1, 0, 0, 0, 0)`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_ai AFTER INSERT ON ${TABLE} BEGIN
      UPDATE cacheness_counters SET entries = entries + 1, bytes = bytes + NEW.stored_bytes WHERE id = 1;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_ad AFTER DELETE ON ${TABLE} BEGIN
      UPDATE cacheness_counters SET entries = entries - 1, bytes = bytes - OLD.stored_bytes WHERE id = 1;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_au AFTER UPDATE OF stored_bytes ON ${TABLE} BEGIN
      UPDATE cacheness_counters SET bytes = bytes - OLD.stored_bytes + NEW.stored_bytes WHERE id = 1;
    END`)
  }),
  // Leases let processes sharing the cache compute a memoised value once: one row per key being
  // computed, taken over by anyone once `expires_at` has passed (a crashed holder). Made
  // `WITHOUT ROWID` since 2026-12 (see `leasesWithoutRowid`; the statements are the same).
  "2_leases": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(LEASES_TABLE)
  }),
  // Stat fingerprints of files hashed as key params: one row per path, replaced on change.
  "3_fingerprints": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${FINGERPRINTS} (
      path TEXT PRIMARY KEY NOT NULL,
      stat TEXT NOT NULL,
      hash TEXT NOT NULL
    ) WITHOUT ROWID`)
  }),
  // Namespaces become part of an entry's identity (`shared/namespaceKey.ts`): rows of every other
  // namespace than the default are rekeyed (the default namespace's keys are unchanged), with their
  // custom metadata rows. Entries and bytes are then counted per namespace by triggers, as the
  // whole cache's are: only rows outside the default namespace touch that table, so a put in the
  // default namespace costs what it did (its count is the whole cache's minus the others').
  // Insertion order is the rowid, which an upsert's DO UPDATE keeps: nothing to add for it.
  "4_namespaces": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const derive = yield* NamespaceKey.load
    const custom = (yield* sql.unsafe<{ readonly name: string }>(
      `SELECT m.name FROM sqlite_master m WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'
        AND EXISTS (SELECT 1 FROM pragma_table_info(m.name) c WHERE c.name = 'cache_key')`
    )).map((r) => r.name)
    const rows = yield* sql.unsafe<{ readonly key: string; readonly namespace: string; readonly checksum: string }>(
      `SELECT key, namespace, checksum FROM ${TABLE} WHERE namespace <> ''`
    )
    for (const row of rows) {
      const key = derive(row.namespace, row.key)
      // The stored bytes keep naming the old key in their header: reads accept a header key that
      // derives to the row's key in its namespace (`cache/integrity.ts`).
      yield* sql.unsafe(`UPDATE ${TABLE} SET key = ?, checksum = ? WHERE key = ?`, [
        key,
        NamespaceKey.rebindChecksum(row.checksum, row.key, key),
        row.key
      ])
      for (const table of custom) {
        yield* sql.unsafe(`UPDATE "${table}" SET cache_key = ? WHERE cache_key = ?`, [key, row.key])
      }
    }
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${NAMESPACE_COUNTERS} (
      namespace TEXT PRIMARY KEY NOT NULL, entries INTEGER NOT NULL, bytes INTEGER NOT NULL
    ) WITHOUT ROWID`)
    yield* sql.unsafe(`INSERT OR REPLACE INTO ${NAMESPACE_COUNTERS} (namespace, entries, bytes)
      SELECT namespace, count(*), coalesce(sum(stored_bytes), 0) FROM ${TABLE} WHERE namespace <> '' GROUP BY namespace`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_ns_ai AFTER INSERT ON ${TABLE}
      WHEN NEW.namespace <> '' BEGIN
      INSERT INTO ${NAMESPACE_COUNTERS} (namespace, entries, bytes) VALUES (NEW.namespace, 1, NEW.stored_bytes)
        ON CONFLICT (namespace) DO UPDATE SET entries = entries + 1, bytes = bytes + excluded.bytes;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_ns_ad AFTER DELETE ON ${TABLE}
      WHEN OLD.namespace <> '' BEGIN
      UPDATE ${NAMESPACE_COUNTERS} SET entries = entries - 1, bytes = bytes - OLD.stored_bytes
        WHERE namespace = OLD.namespace;
      DELETE FROM ${NAMESPACE_COUNTERS} WHERE namespace = OLD.namespace AND entries <= 0;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_ns_au AFTER UPDATE OF namespace, stored_bytes ON ${TABLE}
      WHEN OLD.namespace <> '' OR NEW.namespace <> '' BEGIN
      UPDATE ${NAMESPACE_COUNTERS} SET entries = entries - 1, bytes = bytes - OLD.stored_bytes
        WHERE namespace = OLD.namespace;
      DELETE FROM ${NAMESPACE_COUNTERS} WHERE namespace = OLD.namespace AND entries <= 0;
      INSERT INTO ${NAMESPACE_COUNTERS} (namespace, entries, bytes)
        SELECT NEW.namespace, 1, NEW.stored_bytes WHERE NEW.namespace <> ''
        ON CONFLICT (namespace) DO UPDATE SET entries = entries + 1, bytes = bytes + excluded.bytes;
    END`)
    // Listing, clearing or invalidating one namespace reads its rows only; partial, so puts in the
    // default namespace do not maintain it. Queries add `namespace <> ''` so the planner may use it.
    yield* sql.unsafe(
      `CREATE INDEX IF NOT EXISTS ${TABLE}_namespace ON ${TABLE}(namespace) WHERE namespace <> ''`
    )
  }),
  // Grace (stale-while-revalidate, stale-if-error): until when an expired entry may still be
  // served stale. Existing entries get none (stale_until = expires_at). No index of its own:
  // stale_until >= expires_at, so cleanup's `expires_at <= now AND stale_until <= now` walks the
  // expiry index, and every put keeps the cost of one index.
  "5_stale_until": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const columns = yield* sql.unsafe<{ readonly name: string }>(`SELECT name FROM pragma_table_info('${TABLE}')`)
    if (!columns.some((c) => c.name === "stale_until")) {
      yield* sql.unsafe(`ALTER TABLE ${TABLE} ADD COLUMN stale_until INTEGER`)
    }
    yield* sql.unsafe(`UPDATE ${TABLE} SET stale_until = expires_at WHERE stale_until IS NULL`)
  }),
  // Tags: the entry's tags as JSON text beside the row (read with it, no join), and the tag index
  // (tag, key) that `invalidateTags` and `list({ tag })` walk. Triggers drop an entry's index rows
  // when it is removed or rewritten; untagged entries (`tags IS NULL`) pay nothing.
  "6_tags": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const columns = yield* sql.unsafe<{ readonly name: string }>(`PRAGMA table_info(${TABLE})`)
    if (!columns.some((c) => c.name === "tags")) yield* sql.unsafe(`ALTER TABLE ${TABLE} ADD COLUMN tags TEXT`)
    yield* sql.unsafe(`CREATE TABLE IF NOT EXISTS ${TAGS} (
      tag TEXT NOT NULL,
      key TEXT NOT NULL,
      PRIMARY KEY (tag, key)
    ) WITHOUT ROWID`)
    yield* sql.unsafe(`CREATE INDEX IF NOT EXISTS ${TAGS}_key ON ${TAGS}(key)`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_tags_ad AFTER DELETE ON ${TABLE}
      WHEN OLD.tags IS NOT NULL BEGIN
      DELETE FROM ${TAGS} WHERE key = OLD.key;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER IF NOT EXISTS ${TABLE}_tags_au AFTER UPDATE OF tags ON ${TABLE}
      WHEN OLD.tags IS NOT NULL BEGIN
      DELETE FROM ${TAGS} WHERE key = OLD.key;
    END`)
  }),
  // The whole cache's counters cover the rows up to a rowid mark, `counted_through`; the rows
  // above it (the newest, a few dozen at most) are counted when the counters are read
  // (`COUNTED`), and folded in by a writer's transaction once there are `FOLD_AT` of them. A put
  // of a new entry then writes no counters page: updating the counters row from a trigger made
  // every commit write one more page to the WAL, ~6–8 µs of a ~50 µs put (measured, CPU). The
  // triggers keep the counters of the rows at or below the mark: an insert there (a rowid reused
  // after the newest rows were deleted), a delete, a change of size. Exact across processes as
  // before: a reader sums the tail in the same statement as the counters row, a writer folds it
  // inside its own write transaction.
  "7_counter_tail": Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const columns = yield* sql.unsafe<{ readonly name: string }>(
      `SELECT name FROM pragma_table_info('cacheness_counters')`
    )
    if (!columns.some((c) => c.name === "counted_through")) {
      yield* sql.unsafe(`ALTER TABLE cacheness_counters ADD COLUMN counted_through INTEGER NOT NULL DEFAULT 0`)
      // The triggers counted every row so far: all of them are at or below the mark.
      yield* sql.unsafe(
        `UPDATE cacheness_counters SET counted_through = (SELECT coalesce(max(rowid), 0) FROM ${TABLE}) WHERE id = 1`
      )
    } else {
      // Run again (a layout taken back by hand): the rows above the mark are not counted yet.
      yield* sql.unsafe(FOLD)
    }
    for (const suffix of ["_ai", "_ad", "_au"]) yield* sql.unsafe(`DROP TRIGGER IF EXISTS ${TABLE}${suffix}`)
    yield* sql.unsafe(`CREATE TRIGGER ${TABLE}_ai AFTER INSERT ON ${TABLE}
      WHEN NEW.rowid <= (SELECT counted_through FROM cacheness_counters WHERE id = 1) BEGIN
      UPDATE cacheness_counters SET entries = entries + 1, bytes = bytes + NEW.stored_bytes WHERE id = 1;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER ${TABLE}_ad AFTER DELETE ON ${TABLE}
      WHEN OLD.rowid <= (SELECT counted_through FROM cacheness_counters WHERE id = 1) BEGIN
      UPDATE cacheness_counters SET entries = entries - 1, bytes = bytes - OLD.stored_bytes WHERE id = 1;
    END`)
    yield* sql.unsafe(`CREATE TRIGGER ${TABLE}_au AFTER UPDATE OF stored_bytes ON ${TABLE}
      WHEN OLD.rowid <= (SELECT counted_through FROM cacheness_counters WHERE id = 1) BEGIN
      UPDATE cacheness_counters SET bytes = bytes - OLD.stored_bytes + NEW.stored_bytes WHERE id = 1;
    END`)
  })
}

const MIGRATIONS_TABLE = "cacheness_migrations"

/**
 * The whole cache's counts: the counters row plus the rows above its mark (see "7_counter_tail"),
 * in one statement (one snapshot). No row when the counters row is lost. `tail` is how many rows
 * were above the mark.
 */
const COUNTED = `SELECT c.entries + count(e.rowid) AS entries, c.bytes + coalesce(sum(e.stored_bytes), 0) AS bytes,
      c.hits AS hits, c.misses AS misses, count(e.rowid) AS tail
    FROM cacheness_counters c LEFT JOIN ${TABLE} e ON e.rowid > c.counted_through WHERE c.id = 1 GROUP BY c.id`

/** How many entries of a batch `upsertMany` makes and writes at a time (see `upsertProducedTx`). */
const UPSERT_CHUNK = 256

/** Thrown inside a batch's transaction when its `produce` gives up: the batch rolls back. */
const Abandoned = Symbol("cacheness/sqlite/Abandoned")

/** How many rows above the mark a writer folds into the counters row (in its transaction). */
const FOLD_AT = 16

/** Columns of an `EntryRecord`, aliased so a row object is the record itself. */
const RECORD_COLUMNS = `key, namespace, description, format, codec, stored_bytes AS storedBytes,
  raw_bytes AS rawBytes, checksum, blob_id AS blobId, created_at AS createdAt,
  accessed_at AS accessedAt, expires_at AS expiresAt, hits, params, metadata, stale_until AS staleUntil, tags`

/** Sort columns of `list`, as data: the only identifiers that reach an ORDER BY. */
const ORDER_COLUMNS: Record<EntryOrder, string> = {
  createdAt: "created_at",
  accessedAt: "accessed_at",
  expiresAt: "expires_at",
  storedBytes: "stored_bytes",
  hits: "hits",
  key: "key"
}

/** The record columns in a fixed order, for raw (array) rows: `fromRaw` builds the record. */
const RAW_COLUMNS = `key, namespace, description, format, codec, stored_bytes, raw_bytes, checksum, blob_id,
  created_at, accessed_at, expires_at, hits, params, metadata, stale_until, tags`

/**
 * A record from a raw row. better-sqlite3 builds a named-property object per row through the V8
 * API, which for 10,000 rows of 15 columns costs more than the query; an object literal is cheap.
 */
const fromRaw = (r: Array<any>): EntryRecord => ({
  key: r[0],
  namespace: r[1],
  description: r[2],
  format: r[3],
  codec: r[4],
  storedBytes: r[5],
  rawBytes: r[6],
  checksum: r[7],
  blobId: r[8],
  inline: null,
  createdAt: r[9],
  accessedAt: r[10],
  expiresAt: r[11],
  hits: r[12],
  params: r[13],
  metadata: r[14],
  staleUntil: r[15],
  tags: r[16] === null ? undefined : parseTags(r[16])
})

/** A record with its inline value from a raw row of the `lookup` / `lookupMany` statements. */
const fromLookupRow = (row: Array<any>): EntryRecord => ({
  key: row[0],
  namespace: row[1],
  description: row[2],
  format: row[3],
  codec: row[4],
  storedBytes: row[5],
  rawBytes: row[6],
  checksum: row[7],
  blobId: row[8],
  inline: row[9],
  createdAt: row[10],
  accessedAt: row[11],
  expiresAt: row[12],
  hits: row[13],
  params: row[14],
  metadata: row[15],
  staleUntil: row[16],
  tags: row[17] === null ? undefined : parseTags(row[17])
})

/** Where each sort field sits in a `RAW_COLUMNS` row. */
const RAW_SLOTS: Record<EntryOrder, number> = {
  key: 0,
  storedBytes: 5,
  createdAt: 9,
  accessedAt: 10,
  expiresAt: 11,
  hits: 12
}

/**
 * SQLite's order of rows by one slot: NULL first ascending (last descending), ties broken by the
 * rowid, each row's last element (insertion order: an upsert's DO UPDATE keeps a row's rowid).
 * Without a slot, by the rowid alone.
 */
const compareRows = (slot: number | undefined, descending: boolean) => {
  const sign = descending ? -1 : 1
  return (a: ReadonlyArray<any>, b: ReadonlyArray<any>): number => {
    if (slot !== undefined) {
      const x = a[slot]
      const y = b[slot]
      const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1
      if (c !== 0) return c * sign
    }
    return (a[a.length - 1] - b[b.length - 1]) * sign
  }
}

/** Where the rowid (insertion order) sits among a listing's columns: after `LISTING_COLUMNS`. */
const LISTING_SEQ = LISTING_COLUMNS.rest + 1

/** Where each sortable field sits among a listing's columns. */
const LISTING_SLOTS: Record<EntryOrder, number> = {
  key: LISTING_COLUMNS.key,
  storedBytes: LISTING_COLUMNS.storedBytes,
  createdAt: LISTING_COLUMNS.createdAt,
  accessedAt: LISTING_COLUMNS.accessedAt,
  expiresAt: LISTING_COLUMNS.expiresAt,
  hits: LISTING_COLUMNS.hits
}

/**
 * A whole listing as JSON built by SQLite, one text per column of `LISTING_COLUMNS`, then the
 * rowid's: each a JSON array of that column's values over every row, each read by one
 * `JSON.parse`. On Node 20 better-sqlite3 builds a raw row through a V8 API call per column;
 * SQLite writing the values as text gives the same values (its JSON numbers round-trip exactly)
 * for less, and the large strings sit outside the young generation, so no scavenge copies them. A
 * column rather than a row per array: no 10,000 row arrays built and dropped (`entriesFromColumns`),
 * 0.75–0.89× the CPU of a 10k listing (in-process A/B, PERFORMANCE.md "Promise put and list (#21)").
 * Every aggregate reads the same rows in the same order, but aggregation does not keep the
 * subquery's order: `orderOfColumns` checks it. JSON cannot hold a BLOB: a damaged row holding one
 * fails the query, and the listing is read as raw rows instead.
 *
 * The params are not a JSON array of strings (escaped as strings they would each be parsed again,
 * one `JSON.parse` per row): their texts, as stored, are joined into a JSON array of every row's
 * params, parsed once. A params text that is not one JSON value fails that parse or changes the
 * number of elements (`columnsOfListing` checks it), and a value that is not text is joined as a
 * token no parse accepts: the listing is then read as raw rows, each params text parsed alone.
 *
 * Namespace, description, format, codec, metadata, tags and `stale_until` are one column, `rest`:
 * `0` for a row whose first six are (`IS`: the same text, or both NULL) the six values bound first
 * (`ListingDefaults`) and whose `stale_until` is its `expires_at`; the row's own seven, as
 * `json_array` writes them, otherwise. `IS` between texts compares bytes (the columns' collation is
 * BINARY), so a `0` stands for exactly the values JS puts in its place. Seven columns to one: 0.80–0.84×
 * the CPU of a 10k listing, 0.85× its instructions, 5.7 MB allocated instead of 6.7 (PERFORMANCE.md
 * "Listing (#21), 2026-12-03").
 */
const entryColumnsJson = (select: string) =>
  `SELECT json_group_array(key), json_group_array(stored_bytes), json_group_array(raw_bytes),
    json_group_array(created_at), json_group_array(accessed_at), json_group_array(expires_at), json_group_array(hits),
    '[' || group_concat(CASE typeof(params) WHEN 'text' THEN params WHEN 'null' THEN 'null' ELSE '!' END, ',') || ']',
    json_group_array(CASE WHEN namespace IS ? AND description IS ? AND format IS ? AND codec IS ? AND metadata IS ?
        AND tags IS ? AND stale_until IS expires_at THEN 0
      ELSE json_array(namespace, description, format, codec, metadata, stale_until, tags) END),
    json_group_array(insertion_seq)
    FROM (${select})`

/**
 * The same listing with the seven `rest` fields as columns of their own after the rowid
 * (`LISTING_OWN`) and NULL for `rest`: for a cache whose rows mostly do not share them, where
 * `json_array` and a 7-value array for every row cost ~1.1–1.2× these seven columns (PERFORMANCE.md
 * "Listing (#21), 2026-12-03"). The same entries either way: only the speed differs.
 */
const entryOwnColumnsJson = (select: string) =>
  `SELECT json_group_array(key), json_group_array(stored_bytes), json_group_array(raw_bytes),
    json_group_array(created_at), json_group_array(accessed_at), json_group_array(expires_at), json_group_array(hits),
    '[' || group_concat(CASE typeof(params) WHEN 'text' THEN params WHEN 'null' THEN 'null' ELSE '!' END, ',') || ']',
    NULL, json_group_array(insertion_seq), json_group_array(namespace), json_group_array(description),
    json_group_array(format), json_group_array(codec), json_group_array(metadata), json_group_array(stale_until),
    json_group_array(tags)
    FROM (${select})`

/**
 * The columns of `entryColumnsJson`'s or `entryOwnColumnsJson`'s texts (`rest` `null` in the
 * latter); throws when a column or the params do not hold one value per row (the caller then
 * reads raw rows).
 */
const columnsOfListing = (texts: ReadonlyArray<string | null>): Array<Array<any> | null> => {
  const columns: Array<Array<any> | null> = []
  let count = 0
  for (let c = 0; c < texts.length; c++) {
    const text = texts[c]
    if (c === LISTING_COLUMNS.rest && text === null && texts.length > LISTING_OWN) {
      columns.push(null)
      continue
    }
    // No rows: `group_concat` of nothing is NULL.
    const column: unknown = text === null ? [] : JSON.parse(text)
    if (c === 0 && Array.isArray(column)) count = column.length
    if (!Array.isArray(column) || column.length !== count) {
      throw new Error("the listing's columns are not one JSON value per row")
    }
    columns.push(column)
  }
  return columns
}

/**
 * Whether most rows of a listing share the seven `rest` fields with its first row: whether the
 * next listing should bind them (`entryColumnsJson`) or read them as columns (`entryOwnColumnsJson`).
 * A guess only, so equality in JS stands for SQLite's `IS`.
 */
const mostlyShared = (columns: ReadonlyArray<ReadonlyArray<any> | null>): boolean => {
  const rest = columns[LISTING_COLUMNS.rest]
  const count = columns[0]!.length
  let shared = 0
  if (rest !== null) {
    for (let i = 0; i < count; i++) if (rest[i] === 0) shared++
  } else {
    const own = columns.slice(LISTING_OWN) as ReadonlyArray<ReadonlyArray<any>>
    const expiresAt = columns[LISTING_COLUMNS.expiresAt]!
    for (let i = 0; i < count; i++) {
      let same = own[5][i] === expiresAt[i]
      for (let f = 0; same && f < own.length; f++) same = f === 5 || own[f][i] === own[f][0]
      if (same) shared++
    }
  }
  return shared * 2 >= count
}

/**
 * A listing's raw rows (`ENTRY_ROW_COLUMNS`, then the rowid) as its columns, each row's params text
 * parsed alone and its `rest` its own seven values.
 */
const columnsOfRows = (rows: ReadonlyArray<ReadonlyArray<any>>): Array<Array<any>> => [
  rows.map((r) => r[0]),
  rows.map((r) => r[5]),
  rows.map((r) => r[6]),
  rows.map((r) => r[7]),
  rows.map((r) => r[8]),
  rows.map((r) => r[9]),
  rows.map((r) => r[10]),
  rows.map((r) => parseJson(r[11])),
  rows.map((r) => [r[1], r[2], r[3], r[4], r[12], r[13], r[14]]),
  rows.map((r) => r[15])
]

/** No shared values: what a listing binds when it has none to guess from. */
const NO_DEFAULTS: ListingDefaults = {
  namespace: null,
  description: null,
  format: null,
  codec: null,
  metadata: null,
  tags: null
}

/**
 * The values most rows of a listing likely share: those of one row it selects (a row of `rows`, a
 * statement reading namespace, description, format, codec, metadata and tags), anything but text
 * read as none. Only a guess: a row that does not share them is listed with its own.
 */
const defaultsOf = (row: ReadonlyArray<unknown> | undefined): ListingDefaults => {
  if (row === undefined) return NO_DEFAULTS
  const text = (v: unknown) => typeof v === "string" ? v : null
  return {
    namespace: text(row[0]),
    description: text(row[1]),
    format: text(row[2]),
    codec: text(row[3]),
    metadata: text(row[4]),
    tags: text(row[5])
  }
}

/**
 * The positions of a listing's rows in SQLite's order by one column (`compareRows` over columns:
 * NULL first ascending, ties broken by the rowid), or `null` when they are in it already.
 */
const orderOfColumns = (
  columns: ReadonlyArray<ReadonlyArray<any>>,
  slot: number | undefined,
  descending: boolean
): Array<number> | null => {
  const sign = descending ? -1 : 1
  const by = slot === undefined ? undefined : columns[slot]
  const seq = columns[LISTING_SEQ]
  const compare = (a: number, b: number): number => {
    if (by !== undefined) {
      const x = by[a]
      const y = by[b]
      const c = x === y ? 0 : x === null ? -1 : y === null ? 1 : x < y ? -1 : 1
      if (c !== 0) return c * sign
    }
    return (seq[a] - seq[b]) * sign
  }
  // By the rowid alone (the usual listing), rows already in order need no positions. By a column,
  // always sorted as `list` sorts its rows: a damaged value (text in a time column) compares
  // inconsistently, and both listings must agree on where it lands.
  if (by === undefined) {
    let sorted = true
    for (let i = 1; i < seq.length && sorted; i++) sorted = compare(i - 1, i) < 0
    if (sorted) return null
  }
  return Array.from(seq, (_, i) => i).sort(compare)
}

/** The same columns qualified by the entries alias `e`, for joins with custom tables. */
const JOINED_COLUMNS = RECORD_COLUMNS.split(",").map((c) => `e.${c.trim()}`).join(", ")

/** A touched entry's new `stale_until`: the new expiry plus the grace it had (none when it never expired). */
const TOUCHED_STALE_UNTIL = `CASE WHEN @expiresAt IS NULL THEN NULL
      ELSE @expiresAt + max(0, coalesce(stale_until - expires_at, 0)) END`

/** The prepared statements of the hot path; also how `damage` checks a layout matches. */
const prepareStatements = (db: Database.Database) => ({
  // Raw rows skip better-sqlite3's per-column object building: the lookup is on every get.
  lookup: db.prepare(`SELECT key, namespace, description, format, codec, stored_bytes, raw_bytes, checksum,
      blob_id, inline_value, created_at, accessed_at, expires_at, hits, params, metadata, stale_until, tags
      FROM ${TABLE} WHERE key = ?`).raw(true),
  // A batch's rows in one statement (`getMany`), each with the position of its key in the JSON
  // array of keys asked (`j.key`), where the caller puts it: no map from keys to rows, and a key
  // asked twice gets its row twice. The keys drive the join (CROSS JOIN keeps json_each outside),
  // one index search each: `key IN (SELECT value FROM json_each(?))` first builds an ephemeral
  // index of the keys, and the whole statement took ~1.2× as long for 1,000 keys.
  lookupMany: db.prepare(`SELECT e.key, e.namespace, e.description, e.format, e.codec, e.stored_bytes, e.raw_bytes,
      e.checksum, e.blob_id, e.inline_value, e.created_at, e.accessed_at, e.expires_at, e.hits, e.params, e.metadata,
      e.stale_until, e.tags, j.key
      FROM json_each(?) AS j CROSS JOIN ${TABLE} AS e ON e.key = j.value`).raw(true),
  // The key itself is not read back: the caller has it.
  probeMany: db.prepare(`SELECT j.key, e.stored_bytes, e.checksum, e.blob_id, e.inline_value, e.expires_at,
      e.stale_until FROM json_each(?) AS j CROSS JOIN ${TABLE} AS e ON e.key = j.value`).raw(true),
  // The same rows as one JSON text of their other columns and one BLOB of their inline values end
  // to end (both aggregates step over the rows together, so the n-th inline length of the text is
  // the n-th piece of the BLOB). better-sqlite3 builds every value of a row through a V8 call and
  // a Buffer for each BLOB: ~3 µs a row, against ~0.5 µs for SQLite to find and read the row. A
  // damaged row — a BLOB where the text has a column (JSON holds none: it would fail the statement,
  // or be read as JSONB), an inline value that is not one — has the length -1 - its length in the
  // BLOB, which skips it there: the caller probes it alone. Only BLOBs sort at or above X''.
  probeManyPacked: db.prepare(`SELECT json_group_array(json_array(j.key, e.stored_bytes, e.checksum, e.blob_id,
        e.expires_at, e.stale_until,
        CASE WHEN e.stored_bytes >= X'' OR e.checksum >= X'' OR e.blob_id >= X'' OR e.expires_at >= X''
            OR e.stale_until >= X'' OR e.inline_value < X''
          THEN -1 - coalesce(octet_length(e.inline_value), 0) ELSE octet_length(e.inline_value) END)),
      CAST(group_concat(e.inline_value, '') AS BLOB)
      FROM json_each(?) AS j CROSS JOIN ${TABLE} AS e ON e.key = j.value`).raw(true),
  tag: db.prepare(`INSERT OR IGNORE INTO ${TAGS} (tag, key) VALUES (?, ?)`),
  probe: db.prepare(
    `SELECT stored_bytes, checksum, blob_id, inline_value, expires_at, stale_until FROM ${TABLE} WHERE key = ?`
  ).raw(true),
  blobOf: db.prepare(`SELECT blob_id FROM ${TABLE} WHERE key = ?`).pluck(),
  // The blob ids a batch's keys hold now, in one statement (`upsertMany`), not one query per row.
  // Keys driving the join, as in `probeMany`, and only rows that have a blob: an inline row
  // replaces nothing. (`key IN (SELECT value FROM json_each(?))` built an ephemeral index of the
  // keys first: 0.87 against 0.35 µs a key for 10,000 new keys, 1.99 against 0.69 for existing
  // inline ones.)
  blobsOf: db.prepare(`SELECT e.key, e.blob_id FROM json_each(?) AS j CROSS JOIN ${TABLE} AS e ON e.key = j.value
      WHERE e.blob_id IS NOT NULL`).raw(true),
  upsert: db.prepare(`INSERT INTO ${TABLE} (key, namespace, description, format, codec, stored_bytes,
        raw_bytes, checksum, blob_id, inline_value, created_at, accessed_at, expires_at, hits, params, metadata,
        stale_until, tags)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET namespace = excluded.namespace, description = excluded.description,
        format = excluded.format, codec = excluded.codec, stored_bytes = excluded.stored_bytes,
        raw_bytes = excluded.raw_bytes, checksum = excluded.checksum, blob_id = excluded.blob_id,
        inline_value = excluded.inline_value, created_at = excluded.created_at,
        accessed_at = excluded.accessed_at, expires_at = excluded.expires_at, hits = 0,
        params = excluded.params, metadata = excluded.metadata, stale_until = excluded.stale_until,
        tags = excluded.tags`),
  // [total bytes, rows above the mark]
  totalBytes: db.prepare(`SELECT bytes, tail FROM (${COUNTED})`).raw(true),
  counters: db.prepare(`SELECT entries, bytes AS totalBytes, hits, misses FROM (${COUNTED})`),
  // The rows above the mark into the counters row (inside a write transaction).
  fold: db.prepare(FOLD),
  // A batch's fold (`upsertMany`): the counters row, then the rows above its mark read once —
  // `totalBytes` and FOLD read them four times between them, ~5 ms for a batch of 10,000.
  counterRow: db.prepare(`SELECT bytes, counted_through FROM cacheness_counters WHERE id = 1`).raw(true),
  tailOf: db.prepare(`SELECT count(*), coalesce(sum(stored_bytes), 0), coalesce(max(rowid), 0) FROM ${TABLE}
      WHERE rowid > ?`).raw(true),
  foldBy: db.prepare(`UPDATE cacheness_counters SET entries = entries + ?, bytes = bytes + ?,
      counted_through = max(counted_through, ?) WHERE id = 1`),
  namespaceCounters: db.prepare(
    `SELECT entries, bytes AS totalBytes FROM ${NAMESPACE_COUNTERS} WHERE namespace = ?`
  ),
  // The default namespace holds what no other namespace counts.
  defaultNamespaceCounters: db.prepare(`SELECT
      entries - (SELECT coalesce(sum(entries), 0) FROM ${NAMESPACE_COUNTERS}) AS entries,
      bytes - (SELECT coalesce(sum(bytes), 0) FROM ${NAMESPACE_COUNTERS}) AS totalBytes
      FROM (${COUNTED})`),
  recountNamespaces: db.prepare(`INSERT INTO ${NAMESPACE_COUNTERS} (namespace, entries, bytes)
      SELECT namespace, count(*), coalesce(sum(stored_bytes), 0) FROM ${TABLE} WHERE namespace <> '' GROUP BY namespace`),
  clearNamespaces: db.prepare(`DELETE FROM ${NAMESPACE_COUNTERS}`),
  // The counters row lost (a damaged database): rebuilt from the entries; hits and misses restart.
  restoreCounters: db.prepare(`INSERT OR REPLACE INTO cacheness_counters
      (id, entries, bytes, hits, misses, counted_through)
      SELECT 1, count(*), coalesce(sum(stored_bytes), 0), 0, 0, coalesce(max(rowid), 0) FROM ${TABLE}`),
  // The entry keeps its grace: stale_until moves with expires_at (named parameters: the new expiry
  // appears three times).
  touch: db.prepare(`UPDATE ${TABLE} SET expires_at = @expiresAt, accessed_at = max(accessed_at, @now),
      stale_until = ${TOUCHED_STALE_UNTIL}
      WHERE key = @key AND (expires_at IS NULL OR expires_at > @now)`),
  touchResigned: db.prepare(`UPDATE ${TABLE} SET expires_at = @expiresAt, accessed_at = max(accessed_at, @now),
      stale_until = ${TOUCHED_STALE_UNTIL}, checksum = @to
      WHERE key = @key AND (expires_at IS NULL OR expires_at > @now) AND checksum = @from`),
  access: db.prepare(`UPDATE ${TABLE} SET hits = hits + ?, accessed_at = max(accessed_at, ?) WHERE key = ?`),
  bump: db.prepare(`UPDATE cacheness_counters SET hits = hits + ?, misses = misses + ? WHERE id = 1`),
  // The row as examined (blob id and checksum): a re-stored version is left alone. The update
  // trigger moves the byte counter with it.
  repairSize: db.prepare(`UPDATE ${TABLE} SET stored_bytes = ? WHERE key = ? AND blob_id IS ? AND checksum = ?`),
  recount: db.prepare(`UPDATE cacheness_counters SET entries = (SELECT count(*) FROM ${TABLE}),
      bytes = (SELECT coalesce(sum(stored_bytes), 0) FROM ${TABLE}),
      counted_through = (SELECT coalesce(max(rowid), 0) FROM ${TABLE}) WHERE id = 1`),
  lru: db.prepare(`SELECT key, stored_bytes AS storedBytes FROM ${TABLE} ORDER BY accessed_at, key`),
  clear: db.prepare(`DELETE FROM ${TABLE} RETURNING key, blob_id AS blobId, stored_bytes AS storedBytes`),
  fingerprint: db.prepare(`SELECT path, stat, hash FROM ${FINGERPRINTS} WHERE path = ?`),
  fingerprintPaths: db.prepare(`SELECT path FROM ${FINGERPRINTS} WHERE path > ? ORDER BY path LIMIT ?`).pluck(),
  deleteFingerprint: db.prepare(`DELETE FROM ${FINGERPRINTS} WHERE path = ?`),
  fingerprintRange: db.prepare(`SELECT path, stat, hash FROM ${FINGERPRINTS} WHERE path >= ? AND path < ?`),
  saveFingerprint: db.prepare(`INSERT INTO ${FINGERPRINTS} (path, stat, hash) VALUES (@path, @stat, @hash)
      ON CONFLICT (path) DO UPDATE SET stat = excluded.stat, hash = excluded.hash`),
  // One statement, so taking a lease is atomic across processes without an explicit transaction.
  acquireLease: db.prepare(`INSERT INTO cacheness_leases (key, holder, expires_at) VALUES (?, ?, ?)
      ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
      WHERE cacheness_leases.expires_at <= ? OR cacheness_leases.holder = excluded.holder`),
  // The same, in the same statement refused while a live entry is stored under the key.
  acquireLeaseIfAbsent: db.prepare(`INSERT INTO cacheness_leases (key, holder, expires_at)
      SELECT @key, @holder, @until
      WHERE NOT EXISTS (SELECT 1 FROM ${TABLE} WHERE key = @key AND (expires_at IS NULL OR expires_at > @liveAt))
      ON CONFLICT (key) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
      WHERE cacheness_leases.expires_at <= @now OR cacheness_leases.holder = excluded.holder`),
  releaseLease: db.prepare(`DELETE FROM cacheness_leases WHERE key = ? AND holder = ?`),
  // Changes whenever another connection (any process) commits; ~3–4 µs, no read transaction.
  dataVersion: db.prepare(`PRAGMA data_version`).pluck()
})

/** The SQLite result code of an error, looked for along its `cause` chain (SqlError wraps it). */
const sqliteCode = (cause: unknown): string | undefined => {
  for (let e = cause, depth = 0; typeof e === "object" && e !== null && depth < 5; e = (e as any).cause, depth++) {
    if ("code" in e && typeof e.code === "string" && e.code.startsWith("SQLITE_")) return e.code
  }
  return undefined
}

/** Codes meaning the file is damaged or not a database at all. */
const isCorruptCode = (code: string | undefined): boolean =>
  code !== undefined && (code.startsWith("SQLITE_CORRUPT") || code === "SQLITE_NOTADB")

const fail = (method: string, reason: MetadataError["reason"], cause: unknown) => {
  const code = sqliteCode(cause)
  const corrupt = isCorruptCode(code)
  const message = cause instanceof Error ? cause.message : String(cause)
  return new MetadataError({
    method,
    reason: code?.startsWith("SQLITE_BUSY")
      ? "Busy"
      : corrupt
      ? "Corrupt"
      : code === "SQLITE_FULL"
      ? "NoSpace"
      : reason,
    description: corrupt
      ? `${message} — the metadata database is damaged; delete it to start the cache empty (then verify({ repair: true }) removes the orphaned blobs)`
      : message,
    cause
  })
}

/**
 * Whether the database file is damaged where every open looks first: the header, the schema and
 * the small bookkeeping tables. Returns the error when it is; busy or missing files are not
 * damage. A corrupt row deeper in the entries table is found when it is read (a `Corrupt`
 * `MetadataError`), not here: a full `quick_check` costs a scan of the whole file.
 */
const damage = (
  filename: string,
  busyTimeoutMs: number,
  open: (filename: string) => Database.Database = (f) => new Database(f, { fileMustExist: true })
): unknown => {
  if (!fs.existsSync(filename)) return null
  let db: Database.Database | undefined
  try {
    db = open(filename)
    db.pragma(`busy_timeout = ${busyTimeoutMs}`)
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as Array<string>
    for (const table of [MIGRATIONS_TABLE, "cacheness_counters"]) {
      if (tables.includes(table)) db.prepare(`SELECT * FROM ${table}`).all()
    }
    const version = tables.includes(MIGRATIONS_TABLE)
      ? (db.prepare(`SELECT max(migration_id) FROM ${MIGRATIONS_TABLE}`).pluck().get() as number | null) ?? 0
      : 0
    if (version !== LAYOUT_VERSION) return null
    // At the current layout every statement must prepare; if one does not, the schema text
    // itself is damaged (SQLite reports that as a plain error, not as corruption).
    try {
      prepareStatements(db)
    } catch (error) {
      return error
    }
    return entriesDamage(db)
  } catch (error) {
    return isCorruptCode(sqliteCode(error)) ? error : null
  } finally {
    db?.close()
  }
}

/**
 * Whether an existing file is someone else's SQLite database: tables, but no cacheness layout
 * (every cacheness database has its migrations table from its first migration on). It is refused
 * rather than migrated into or moved aside: it is not ours to change.
 */
const foreignTables = (filename: string): ReadonlyArray<string> => {
  if (!fs.existsSync(filename)) return []
  let db: Database.Database | undefined
  try {
    db = new Database(filename, { fileMustExist: true, readonly: true })
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
      .pluck().all() as Array<string>
    return tables.includes(MIGRATIONS_TABLE) ? [] : tables
  } catch {
    // Unreadable or busy: the open and damage checks report it.
    return []
  } finally {
    db?.close()
  }
}

/**
 * The entries table's root pages, which every get and put reads: damage there made each call
 * fail with `Corrupt` on every open. One row through the table and one through each of its
 * indexes touches each root page and its leftmost path — a few pages, whatever the size — where
 * a full `quick_check` would read the whole file. An index the query cannot use (a partial one
 * with another condition) is skipped; only corruption codes count as damage.
 */
const entriesDamage = (db: Database.Database): unknown => {
  db.prepare(`SELECT rowid FROM ${TABLE} NOT INDEXED LIMIT 1`).all()
  const indexes = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?`).pluck().all(
    TABLE
  ) as Array<string>
  for (const index of indexes) {
    try {
      const column = db.prepare(`SELECT name FROM pragma_index_info(?) ORDER BY seqno LIMIT 1`).pluck().get(index) as
        | string
        | undefined
      if (column === undefined) continue
      db.prepare(
        `SELECT 1 FROM ${TABLE} INDEXED BY "${index}" WHERE "${column}" IS NOT NULL AND "${column}" <> '' ORDER BY "${column}" LIMIT 1`
      ).all()
    } catch (error) {
      if (isCorruptCode(sqliteCode(error))) return error
    }
  }
  return null
}

/**
 * A cache's metadata is worth less than the cache being usable: a damaged database file (and its
 * WAL and shared-memory files, which must not be replayed onto a fresh file) is moved aside as
 * `<file>.corrupt-<time>` and the store starts empty, with a warning naming both files. The blobs
 * it referenced become orphans for `verify({ repair: true })`. The file is moved only if it is
 * still the one found damaged (same inode), so two processes opening at once do not move each
 * other's fresh database.
 */
const moveAsideIfDamaged = (filename: string, busyTimeoutMs: number) =>
  Effect.gen(function*() {
    const before = yield* Effect.sync(() => fs.statSync(filename, { throwIfNoEntry: false }))
    if (before === undefined) return
    const error = damage(filename, busyTimeoutMs)
    if (error === null) return
    const now = yield* Clock.currentTimeMillis
    const aside = `${filename}.corrupt-${now}`
    const moved = yield* Effect.try({
      try: () => {
        const current = fs.statSync(filename, { throwIfNoEntry: false })
        if (current === undefined || current.ino !== before.ino || current.dev !== before.dev) return false
        for (const suffix of ["-wal", "-shm"]) {
          if (fs.existsSync(filename + suffix)) fs.renameSync(filename + suffix, aside + suffix)
        }
        fs.renameSync(filename, aside)
        return true
      },
      catch: (cause) => fail("MetadataStoreSqlite.open", "OpenFailed", cause)
    })
    if (moved) {
      yield* Effect.logWarning(
        `cacheness: metadata database ${filename} is damaged (${
          error instanceof Error ? error.message : String(error)
        }); moved to ${aside}, starting empty`
      )
    }
  })

/** Past this size a read-only open reads the live file rather than a copy in memory. */
const SNAPSHOT_LIMIT = 1024 * 1024 * 1024

/**
 * A read-only connection that leaves the directory as it was. SQLite's own read-only connection
 * to a WAL database creates the -wal and -shm files and leaves them behind; when no -wal exists
 * (no connection is open and nothing waits to be checkpointed) the file is read into memory
 * instead, with the WAL flag of its header cleared on the copy so SQLite will open it.
 */
const openReadOnly = (filename: string): Database.Database => {
  const wal = fs.statSync(`${filename}-wal`, { throwIfNoEntry: false })
  const size = fs.statSync(filename).size
  if (wal !== undefined || size > SNAPSHOT_LIMIT) return new Database(filename, { readonly: true, fileMustExist: true })
  const copy = fs.readFileSync(filename)
  if (copy.length >= 20 && copy[18] === 2 && copy[19] === 2) {
    copy[18] = 1
    copy[19] = 1
  }
  return new Database(copy, { readonly: true })
}

/** The read-only open: the checks `damage` makes, reported instead of repaired, and the layout. */
const openForLooking = (filename: string, busyTimeoutMs: number) =>
  Effect.gen(function*() {
    if (!fs.existsSync(filename)) {
      return yield* new MetadataError({
        method: "MetadataStoreSqlite.open",
        reason: "OpenFailed",
        description: `${filename} does not exist`
      })
    }
    const error = damage(filename, busyTimeoutMs, openReadOnly)
    if (error !== null) {
      return yield* new MetadataError({
        method: "MetadataStoreSqlite.open",
        reason: "Corrupt",
        description:
          `the metadata database ${filename} is damaged (${error instanceof Error ? error.message : String(error)}); ` +
          "it was opened read-only and left as it is (a command that writes moves it aside and starts the cache empty)",
        cause: error
      })
    }
    const db = yield* Effect.try({
      try: () => {
        const db = openReadOnly(filename)
        db.pragma(`busy_timeout = ${busyTimeoutMs}`)
        return db
      },
      catch: (cause) => fail("MetadataStoreSqlite.open", "OpenFailed", cause)
    })
    const version = yield* Effect.try({
      try: () => {
        const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").pluck().all() as Array<string>
        return tables.includes(MIGRATIONS_TABLE)
          ? (db.prepare(`SELECT max(migration_id) FROM ${MIGRATIONS_TABLE}`).pluck().get() as number | null) ?? 0
          : 0
      },
      catch: (cause) => fail("MetadataStoreSqlite.open", "OpenFailed", cause)
    }).pipe(Effect.tapError(() => Effect.sync(() => db.close())))
    if (version !== LAYOUT_VERSION) {
      db.close()
      return yield* new MetadataError({
        method: "MetadataStoreSqlite.open",
        reason: version > LAYOUT_VERSION ? "NewerLayout" : "OpenFailed",
        description: version > LAYOUT_VERSION
          ? `${filename} has metadata layout ${version}; this release reads up to ${LAYOUT_VERSION}`
          : `${filename} has metadata layout ${version}, older than this release's ${LAYOUT_VERSION}; opened read-only, it cannot be upgraded (open it once for writing)`
      })
    }
    return db
  })

const migrate = (filename: string, busyTimeoutMs: number) =>
  Effect.gen(function*() {
    const sql = yield* SqliteClient.SqliteClient
    yield* sql.unsafe(`PRAGMA busy_timeout = ${busyTimeoutMs}`)
    const run = Migrator.make({})({ loader: Migrator.fromRecord(migrations), table: MIGRATIONS_TABLE })
    // Another process may hold the migration lock: the Migrator then reports nothing to do, so
    // wait until the layout it is writing becomes visible.
    const latest = sql.unsafe<{ readonly id: number | null }>(
      `SELECT max(migration_id) AS id FROM ${MIGRATIONS_TABLE}`
    ).pipe(Effect.map((rows) => rows[0]?.id ?? 0))
    const version = yield* run.pipe(
      Effect.zipRight(latest),
      Effect.filterOrFail((v) => v >= LAYOUT_VERSION, () => "pending" as const),
      Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.intersect(Schedule.recurs(200))))
    )
    if (version > LAYOUT_VERSION) {
      return yield* new MetadataError({
        method: "MetadataStoreSqlite.open",
        reason: "NewerLayout",
        description: `${filename} has metadata layout ${version}; this release reads up to ${LAYOUT_VERSION}`
      })
    }
  }).pipe(
    Effect.catchIf(
      (e): e is Exclude<typeof e, MetadataError> => !(e instanceof MetadataError),
      (cause) => Effect.fail(fail("MetadataStoreSqlite.open", "MigrationFailed", cause))
    ),
    // The Migrator turns a failing migration into a defect (`orDieWith`): on a damaged file whose
    // migrations table no longer says what ran, a migration runs again and fails. Typed here.
    Effect.catchSomeDefect((defect) =>
      defect instanceof Migrator.MigrationError
        ? Option.some(Effect.fail(fail("MetadataStoreSqlite.open", "MigrationFailed", defect)))
        : Option.none()
    )
  )

/** The longest common prefix of the paths that ends with a separator; "" when none. */
const commonDirectory = (paths: ReadonlyArray<string>): string => {
  let prefix = paths[0]
  for (const p of paths) {
    let i = 0
    while (i < prefix.length && i < p.length && prefix.charCodeAt(i) === p.charCodeAt(i)) i++
    prefix = prefix.slice(0, i)
    if (prefix === "") return ""
  }
  const cut = Math.max(prefix.lastIndexOf("/"), prefix.lastIndexOf("\\"))
  // The file system root as the prefix would scan every fingerprint: use point lookups instead.
  return cut <= 0 ? "" : prefix.slice(0, cut + 1)
}

/**
 * Opens (creating or migrating) the database and returns the store. Closing the scope flushes
 * batched access records and closes the connections.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options: SqliteStoreOptions
): Effect.Effect<MetadataStore["Type"], MetadataError, Scope.Scope> =>
  Effect.gen(function*() {
    const busyTimeoutMs = Duration.toMillis(options.busyTimeout ?? "10 seconds")
    const readOnly = options.readOnly === true
    // Looking opens nothing for writing: a foreign or damaged file then fails its open, typed.
    const foreign = readOnly ? [] : foreignTables(options.filename)
    if (foreign.length > 0) {
      return yield* new MetadataError({
        method: "MetadataStoreSqlite.open",
        reason: "OpenFailed",
        description: `${options.filename} is not a cacheness database (it holds the tables ${
          foreign.slice(0, 5).join(", ")
        }${foreign.length > 5 ? ", …" : ""}); give the cache a directory of its own`
      })
    }
    if (!readOnly) yield* moveAsideIfDamaged(options.filename, busyTimeoutMs)
    const client = readOnly ? null : yield* SqliteClient.make({ filename: options.filename }).pipe(
      Effect.provide(Reactivity.layer),
      Effect.catchAllDefect((cause) => Effect.fail(fail("MetadataStoreSqlite.open", "OpenFailed", cause)))
    )
    if (client !== null) {
      yield* migrate(options.filename, busyTimeoutMs).pipe(
        Effect.provideService(SqliteClient.SqliteClient, client),
        Effect.provideService(SqlClient.SqlClient, client)
      )
    }

    const db = readOnly
      ? yield* Effect.acquireRelease(openForLooking(options.filename, busyTimeoutMs), (db) =>
        Effect.sync(() => db.close()))
      : yield* Effect.acquireRelease(
        Effect.try({
          try: () => {
            const db = new Database(options.filename)
            db.pragma(`busy_timeout = ${busyTimeoutMs}`)
            db.pragma("journal_mode = WAL")
            // NORMAL in WAL mode never corrupts on a crash; a power loss may lose the last commits,
            // which for a cache is a miss, not a wrong value.
            db.pragma("synchronous = NORMAL")
            db.pragma("wal_autocheckpoint = 16384")
            leasesWithoutRowid(db)
            return db
          },
          catch: (cause) =>
            fail("MetadataStoreSqlite.open", "OpenFailed", cause)
        }),
        (db) => Effect.sync(() => db.close())
      )

    // A layout that does not match these statements (a damaged schema) fails here, typed.
    const stmt = yield* Effect.try({
      try: () => prepareStatements(db),
      catch: (cause) => fail("MetadataStoreSqlite.open", "OpenFailed", cause)
    })

    // Writes through this connection do not move `data_version`, so they are counted here.
    let localWrites = 0

    // Statements whose text depends on the filter shape, prepared once per shape.
    const prepared = new Map<string, Database.Statement>()
    const prepare = (sql: string) => {
      let s = prepared.get(sql)
      if (s === undefined) {
        s = db.prepare(sql)
        prepared.set(sql, s)
      }
      return s
    }

    /** The WHERE clause of a filter, and its LIMIT (to append after any RETURNING), parameters in order. */
    const where = (
      filter: EntryFilter
    ): { readonly clause: string; readonly limit: string; readonly args: Array<unknown> } => {
      const conditions: Array<string> = []
      const args: Array<unknown> = []
      if (filter.keys !== undefined) {
        conditions.push(`key IN (SELECT value FROM json_each(?))`)
        args.push(JSON.stringify(filter.keys))
      }
      if (filter.namespace !== undefined) {
        // The literal lets the planner use the partial index of namespaced rows.
        conditions.push(filter.namespace === "" ? `namespace = ?` : `namespace = ? AND namespace <> ''`)
        args.push(filter.namespace)
      }
      if (filter.tags !== undefined) {
        conditions.push(`key IN (SELECT key FROM ${TAGS} WHERE tag IN (SELECT value FROM json_each(?)))`)
        args.push(JSON.stringify(filter.tags))
      }
      if (filter.createdBefore !== undefined) {
        conditions.push(`created_at < ?`)
        args.push(filter.createdBefore)
      }
      if (filter.expiredAt !== undefined) {
        // Past the grace too; `expires_at` first so the expiry index serves it (stale_until >= expires_at).
        conditions.push(`expires_at IS NOT NULL AND expires_at <= ? AND coalesce(stale_until, expires_at) <= ?`)
        args.push(filter.expiredAt, filter.expiredAt)
      }
      if (filter.checksum !== undefined) {
        conditions.push(`checksum = ?`)
        args.push(filter.checksum)
      }
      if (filter.blobId !== undefined) {
        conditions.push(filter.blobId === null ? `blob_id IS NULL` : `blob_id = ?`)
        if (filter.blobId !== null) args.push(filter.blobId)
      }
      const clause = conditions.length === 0 ? "" : ` WHERE ${conditions.join(" AND ")}`
      if (filter.limit === undefined) return { clause, args, limit: "" }
      args.push(filter.limit)
      return { clause, args, limit: " LIMIT ?" }
    }

    /**
     * The rows of a listing, `columns` of each, read by `read`; `wrap` may turn the SELECT into a
     * subquery. SQLite picks a page (it then reads only what it returns) but the order is set
     * here: no index serves it, a JS sort of numbers is far cheaper than SQLite's sorter carrying
     * every column, and an aggregate over the page does not promise its order.
     */
    /**
     * The statement of a listing of `columns` (then the rowid as `insertion_seq`), its arguments,
     * and the rows it selects without order or page (FROM and WHERE) with the arguments of those.
     */
    const listQuery = (
      options: ListOptions,
      columns: string
    ): [sql: string, args: Array<unknown>, from: string, fromArgs: Array<unknown>] => {
      const order = options.orderBy
      const descending = options.descending === true
      const args: Array<unknown> = []
      let from = ` FROM ${TABLE}`
      const conditions: Array<string> = []
      if (options.namespace !== undefined) {
        conditions.push(options.namespace === "" ? `namespace = ?` : `namespace = ? AND namespace <> ''`)
        args.push(options.namespace)
      }
      if (options.tag !== undefined) {
        conditions.push(`key IN (SELECT key FROM ${TAGS} WHERE tag = ?)`)
        args.push(options.tag)
      }
      if (conditions.length > 0) from += ` WHERE ${conditions.join(" AND ")}`
      const fromArgs = args.slice()
      // The rowid last: insertion order, and the tie-break of every other order.
      let sql = `SELECT ${columns}, rowid AS insertion_seq${from}`
      if (options.limit !== undefined || (options.offset ?? 0) > 0) {
        const direction = descending ? "DESC" : "ASC"
        sql += order === undefined
          ? ` ORDER BY rowid ${direction} LIMIT ? OFFSET ?`
          : ` ORDER BY ${ORDER_COLUMNS[order]} ${direction}, rowid ${direction} LIMIT ? OFFSET ?`
        args.push(options.limit ?? -1, options.offset ?? 0)
      }
      return [sql, args, from, fromArgs]
    }

    /** A listing's raw rows (`columns`, then the rowid), in the order asked for. */
    const listRows = (
      options: ListOptions,
      columns: string,
      slots: Record<EntryOrder, number>
    ): Array<Array<any>> => {
      const [sql, args] = listQuery(options, columns)
      const order = options.orderBy
      return (prepare(sql).raw(true).all(...args) as Array<Array<any>>).sort(
        compareRows(order === undefined ? undefined : slots[order], options.descending === true)
      )
    }

    /**
     * A listing's entries: the columns as JSON texts SQLite builds (`entryColumnsJson`, its shared
     * values guessed from the first row the listing selects), or, when a damaged row makes those
     * fail, raw rows with each params text parsed alone.
     */
    /** Whether the last listing's rows mostly shared the `rest` fields: how the next one reads them. */
    let shareRest = true

    const listEntryColumns = (options: ListOptions): Array<CacheEntry> => {
      const [sql, args, from, fromArgs] = listQuery(options, ENTRY_ROW_COLUMNS)
      let columns: Array<Array<any> | null>
      let defaults = NO_DEFAULTS
      try {
        if (shareRest) {
          defaults = defaultsOf(
            prepare(`SELECT namespace, description, format, codec, metadata, tags${from} LIMIT 1`).raw(true).get(
              ...fromArgs
            ) as Array<unknown> | undefined
          )
          const { codec, description, format, metadata, namespace, tags } = defaults
          columns = columnsOfListing(
            prepare(entryColumnsJson(sql)).raw(true).get(
              namespace,
              description,
              format,
              codec,
              metadata,
              tags,
              ...args
            ) as Array<string | null>
          )
        } else {
          columns = columnsOfListing(prepare(entryOwnColumnsJson(sql)).raw(true).get(...args) as Array<string | null>)
        }
        shareRest = mostlyShared(columns)
      } catch {
        columns = columnsOfRows(prepare(sql).raw(true).all(...args) as Array<Array<any>>)
      }
      const order = options.orderBy
      return entriesFromColumns(
        columns,
        defaults,
        orderOfColumns(
          columns as Array<Array<any>>,
          order === undefined ? undefined : LISTING_SLOTS[order],
          options.descending === true
        )
      )
    }

    const accesses = new AccessBatch()

    const writeAccesses = db.transaction((taken: TakenAccesses) => {
      for (const [key, access] of taken.accesses) stmt.access.run(access.hits, access.at, key)
      if (taken.hits > 0 || taken.misses > 0) stmt.bump.run(taken.hits, taken.misses)
    })

    const flush = Effect.suspend(() => {
      if (accesses.isEmpty) return Effect.void
      const taken = accesses.take()
      return Effect.try({
        try: () => writeAccesses.immediate(taken),
        catch: (cause) => {
          // Keep what could not be written for the next flush rather than losing counts.
          accesses.restore(taken)
          return fail("MetadataStore.flush", "WriteFailed", cause)
        }
      })
    })

    // Reads and removals must work on a full disk, or the cache could not free space itself: a
    // failed flush before one keeps its batch for the next flush and is logged, never its error.
    const flushFirst = Effect.catchAll(flush, (error) =>
      Effect.logWarning("cacheness: could not write batched hit counts; kept for the next flush", error.message))

    // Checkpoints run here, once per interval, rather than inside whichever put crosses SQLite's
    // threshold: every put appends several pages to the WAL, and the default inline checkpoint
    // every ~1000 pages cost ~40% of put time. `wal_autocheckpoint` stays, raised, as a backstop.
    const checkpoint = Effect.try({
      try: () =>
        void db.pragma("wal_checkpoint(PASSIVE)"),
      catch: (cause) =>
        fail("MetadataStore.checkpoint", "WriteFailed", cause)
    })
    const flushInterval = options.flushInterval ?? "1 second"
    // Read-only: nothing is recorded, so there is nothing to flush or checkpoint.
    if (!readOnly) {
      yield* Effect.zipRight(flush, checkpoint).pipe(
        Effect.catchAll((error) =>
          Effect.logWarning("cacheness: background write failed", error.message)
        ),
        Effect.repeat(Schedule.spaced(flushInterval)),
        // Batching is about wall-clock I/O, not cache time: a TestClock moving days ahead must not
        // replay a flush per simulated second.
        Effect.withClock(daemonClock),
        Effect.interruptible,
        Effect.forkScoped
      )
    }
    // Runs before the connection closes: finalizers run in reverse order of acquisition.
    yield* Effect.addFinalizer(() => Effect.ignoreLogged(flush))
    // A script that never closes the cache still gets its batched accesses written.
    yield* flushBeforeExit(flush, () => !accesses.isEmpty)

    const tables = new Map((options.tables ?? []).map((def) => [def.name, def]))
    if (!readOnly) {
      yield* Effect.try({
        try: () =>
          db.transaction(() => {
            for (const def of tables.values()) {
              for (const statement of TableSql.createTable("sqlite", def, (n) => n, TABLE)) db.exec(statement)
              const existing = new Set(
                (db.prepare(`PRAGMA table_info(${def.name})`).all() as Array<{ name: string }>).map((c) => c.name)
              )
              const missing = def.columns.filter((c) => !existing.has(c.name)).map((c) => c.name)
              if (missing.length > 0) {
                throw new Error(
                  `custom table ${def.name} exists without column(s) ${missing.join(", ")}; migrate or rename it`
                )
              }
            }
          }).immediate(),
        catch: (cause) => fail("MetadataStoreSqlite.open", "MigrationFailed", cause)
      })
    }
    const insertRow = new Map(
      Array.from(readOnly ? [] : tables.values(), (def) =>
        [
          def.name,
          db.prepare(TableSql.insertRow("sqlite", def, (n) => n))
        ] as const)
    )

    /**
     * One entry's statements, inside the caller's transaction: the blob id it replaced, if any.
     * A batch passes the blob ids of its keys read up front, kept current as its rows are written
     * (a key given twice replaces the blob its first entry wrote).
     */
    const upsertOne = (
      record: EntryRecord,
      rows: ReadonlyArray<TableRow> | undefined,
      blobIds?: Map<string, string | null>
    ): string | null => {
      const previous = blobIds === undefined
        ? stmt.blobOf.get(record.key) as string | null | undefined
        : blobIds.get(record.key)
      // Positional parameters (spread: as cheap as writing them out, measured): binding 15 named
      // ones costs ~4 µs more per put.
      const tags = tagsJson(record.tags)
      stmt.upsert.run(...upsertValues(record, record.inline, tags))
      // The update trigger dropped the previous version's index rows.
      if (tags !== null) {
        for (const tag of new Set(record.tags)) {
          stmt.tag.run(tag, record.key)
        }
      }
      if (rows !== undefined) {
        for (const { row, table } of rows) {
          const def = tables.get(table)
          if (def === undefined) {
            throw new MetadataError({
              method: "MetadataStore.upsert",
              reason: "UnknownTable",
              description: `no custom metadata table ${table} is registered`
            })
          }
          insertRow.get(table)!.run(...TableSql.rowParams("sqlite", def, record.key, row))
        }
      }
      blobIds?.set(record.key, record.blobId)
      return previous === undefined || previous === null || previous === record.blobId ? null : previous
    }

    /**
     * The whole cache's size; inside a write transaction (`fold`) the rows above the counters'
     * mark are folded into them once there are `FOLD_AT` (a batch folds its own).
     */
    const currentTotalBytes = (fold: "never" | "long" | "always"): number => {
      const row = stmt.totalBytes.get() as [number, number] | undefined
      if (row === undefined) {
        stmt.restoreCounters.run()
        return (stmt.totalBytes.get() as [number, number])[0]
      }
      if (row[1] > 0 && (fold === "always" || (fold === "long" && row[1] >= FOLD_AT))) stmt.fold.run()
      return row[0]
    }

    /**
     * The whole cache's size after a batch, inside its write transaction, with every row above the
     * counters' mark folded in (as `currentTotalBytes("always")`, reading those rows once).
     */
    const foldedTotalBytes = (): number => {
      const counters = stmt.counterRow.get() as [number, number] | undefined
      if (counters === undefined) {
        stmt.restoreCounters.run()
        return (stmt.totalBytes.get() as [number, number])[0]
      }
      const [rows, bytes, top] = stmt.tailOf.get(counters[1]) as [number, number, number]
      if (rows > 0) stmt.foldBy.run(rows, bytes, top)
      return counters[0] + bytes
    }

    const upsertTx = db.transaction((record: EntryRecord, rows: ReadonlyArray<TableRow> | undefined) => {
      const replacedBlobId = upsertOne(record, rows)
      return { replacedBlobId, totalBytes: currentTotalBytes("long") }
    })
    // A memoised miss's result and the release of its lease, one commit (a commit is most of a
    // put's time: ~40-70 µs here, measured, against ~10 µs for the statements).
    const upsertReleasingTx = db.transaction(
      (record: EntryRecord, rows: ReadonlyArray<TableRow> | undefined, holder: string) => {
        const replacedBlobId = upsertOne(record, rows)
        stmt.releaseLease.run(record.key, holder)
        return { replacedBlobId, totalBytes: currentTotalBytes("long"), leaseReleased: true }
      }
    )

    /** `upsert`'s transaction (it throws what `upsertFailure` reports). */
    const upsertNow = (record: EntryRecord, rows: ReadonlyArray<TableRow> | undefined, leaseHolder?: string) => (
      localWrites++,
        leaseHolder === undefined
          ? upsertTx.immediate(record, rows)
          : upsertReleasingTx.immediate(record, rows, leaseHolder)
    )
    const upsertFailure = (cause: unknown, rows: ReadonlyArray<TableRow> | undefined): MetadataError =>
      cause instanceof MetadataError
        ? cause
        : rows !== undefined && rows.length > 0 && sqliteCode(cause)?.startsWith("SQLITE_CONSTRAINT")
        ? fail("MetadataStore.upsert", "InvalidRow", cause)
        : fail("MetadataStore.upsert", "WriteFailed", cause)

    // One transaction for the batch: a throw part-way rolls every entry back. One single-row
    // statement per entry (`upsertOne`), as `put` writes it: the table has AFTER INSERT triggers,
    // and for those SQLite first copies a multi-row `VALUES` into an ephemeral table and then
    // inserts from it — 50 rows to a statement cost ~1 µs a row more than one row to a statement
    // (CPU, interleaved copies of a 10,000-row cache; bench/putFloor.ts --batch). The entries are
    // made (`produce`) and written `UPSERT_CHUNK` at a time, with the blob ids their keys hold read
    // once a chunk: a caller that prepares each entry in `produce` (`unsafeUpsertMany`) then never
    // holds a whole batch's prepared entries, which every young-generation GC during the batch
    // would copy.
    const upsertProducedTx = db.transaction((count: number, produce: (index: number) => UpsertItem | NotSync) => {
      const replacedBlobIds: Array<string> = []
      const blobIds = new Map<string, string | null>()
      const chunk = new Array<UpsertItem>(Math.min(count, UPSERT_CHUNK))
      for (let start = 0; start < count; start += UPSERT_CHUNK) {
        const size = Math.min(UPSERT_CHUNK, count - start)
        const keys = new Array<string>(size)
        for (let i = 0; i < size; i++) {
          const item = produce(start + i)
          if (item === NotSync) throw Abandoned
          chunk[i] = item
          keys[i] = item.record.key
        }
        // Kept current by `upsertOne` within the chunk; a later chunk reads what earlier ones wrote.
        blobIds.clear()
        for (const [key, blobId] of stmt.blobsOf.all(JSON.stringify(keys)) as Array<[string, string]>) {
          blobIds.set(key, blobId)
        }
        for (let i = 0; i < size; i++) {
          const replaced = upsertOne(chunk[i].record, chunk[i].rows, blobIds)
          if (replaced !== null) replacedBlobIds.push(replaced)
        }
      }
      return { replacedBlobIds, totalBytes: foldedTotalBytes() }
    })
    const upsertManyFailure = (cause: unknown): MetadataError =>
      cause instanceof MetadataError
        ? cause
        : sqliteCode(cause)?.startsWith("SQLITE_CONSTRAINT")
        ? fail("MetadataStore.upsertMany", "InvalidRow", cause)
        : fail("MetadataStore.upsertMany", "WriteFailed", cause)

    /**
     * One DELETE statement, run on its own: a single statement is atomic, and inside an explicit
     * transaction SQLite would keep a statement journal (spilled to a temp file past 64 KiB) for a
     * multi-row DELETE whose counters trigger writes too. `DELETE … LIMIT` (better-sqlite3 builds
     * SQLite with it) walks the expiry index once, where `key IN (SELECT … LIMIT)` then looked each
     * key up again. 5,000 expired of 10,000 in batches of 1,000, CPU median of 8 runs on copies of
     * one database: 18.9 ms → 12.4 (refs) and 10.6 (`removeCounted`: blob ids only).
     */
    const deleteReturning = (filter: EntryFilter, returning: string, mode: "raw" | "pluck"): Array<any> => {
      const { args, clause, limit } = where(filter)
      const statement = prepare(`DELETE FROM ${TABLE}${clause} RETURNING ${returning}${limit}`)
      return (mode === "raw" ? statement.raw(true) : statement.pluck(true)).all(...args)
    }

    // Raw rows: better-sqlite3 names each column through the V8 API, an object literal costs less.
    const removeRows = (filter: EntryFilter): ReadonlyArray<RemovedRef> => {
      const rows = deleteReturning(filter, "key, blob_id, stored_bytes", "raw") as Array<Array<any>>
      const refs = new Array<RemovedRef>(rows.length)
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]
        refs[i] = { key: r[0], blobId: r[1], storedBytes: r[2] }
      }
      return refs
    }

    const removeCounted = (filter: EntryFilter): RemovedCount => {
      const blobs = deleteReturning(filter, "blob_id", "pluck") as Array<string | null>
      return {
        removed: blobs.length,
        blobIds: blobs.filter((id): id is string => id !== null)
      }
    }

    // The counts and the rows they count, in one snapshot (a transaction).
    const recountTx = db.transaction(() => {
      if (stmt.recount.run().changes === 0) stmt.restoreCounters.run()
      stmt.clearNamespaces.run()
      stmt.recountNamespaces.run()
    })

    const evictTx = db.transaction((bytes: number): ReadonlyArray<RemovedRef> => {
      const victims: Array<string> = []
      let freed = 0
      for (const row of stmt.lru.iterate() as IterableIterator<{ key: string; storedBytes: number }>) {
        if (freed >= bytes) break
        victims.push(row.key)
        freed += row.storedBytes
      }
      return victims.length === 0 ? [] : removeRows({ keys: victims })
    })

    // One transaction for a whole tree: a commit per file would cost more than reading small files.
    const deleteFingerprintsTx = db.transaction((paths: ReadonlyArray<string>) => {
      let removed = 0
      for (const path of paths) removed += stmt.deleteFingerprint.run(path).changes
      return removed
    })

    const saveFingerprintsTx = db.transaction((rows: ReadonlyArray<PathFingerprint>) => {
      for (const row of rows) stmt.saveFingerprint.run({ path: row.path, stat: row.stat, hash: row.hash })
    })

    /** The keys of one `probeManyPacked` statement: its BLOB holds at most this many inline values. */
    const PACKED_KEYS = 1000
    // `group_concat` reads each BLOB as text: in a UTF-16 database (one this code did not create)
    // that would convert the bytes.
    const packable = db.pragma("encoding", { simple: true }) === "UTF-8"

    /** One key's row: what `probe` and `unsafeProbe` answer, and how `probeMany` reads a damaged row. */
    const probeOne = (key: string): StoredValue | null => {
      const row = stmt.probe.get(key) as Array<any> | undefined
      return row === undefined ? null : {
        key,
        storedBytes: row[0],
        checksum: row[1],
        blobId: row[2],
        inline: row[3],
        expiresAt: row[4],
        staleUntil: row[5]
      }
    }

    /** `probeMany`'s rows for `keys`, the `start`-th key on, one row each. */
    const probeRows = (keys: ReadonlyArray<string>, start: number, found: Array<Option.Option<StoredValue>>) => {
      for (const row of stmt.probeMany.all(JSON.stringify(keys)) as Array<Array<any>>) {
        const at: number = row[0]
        found[start + at] = Option.some({
          key: keys[at],
          storedBytes: row[1],
          checksum: row[2],
          blobId: row[3],
          inline: row[4],
          expiresAt: row[5],
          staleUntil: row[6]
        })
      }
    }

    /**
     * The same through `probeManyPacked`; `false`, with nothing filled in, when SQLite cannot build
     * its answer (JSON holds no BLOB: a damaged row with one in another column; an answer over
     * SQLite's length limit). A row whose inline value is not bytes is probed on its own: the read
     * decision reports what it holds.
     */
    const probePacked = (
      keys: ReadonlyArray<string>,
      start: number,
      found: Array<Option.Option<StoredValue>>
    ): boolean => {
      if (!packable) return false
      let packed: [string, Buffer | null]
      try {
        packed = stmt.probeManyPacked.get(JSON.stringify(keys)) as [string, Buffer | null]
      } catch {
        return false
      }
      const rows = JSON.parse(packed[0]) as Array<Array<any>>
      const inline = packed[1]
      let offset = 0
      for (let i = 0; i < rows.length; i++) {
        const row = rows[i]
        const at: number = row[0]
        const length: number | null = row[6]
        let value: Uint8Array | null = null
        if (length !== null && length < 0) {
          offset += -1 - length
          found[start + at] = Option.fromNullable(probeOne(keys[at]))
          continue
        }
        if (length !== null) {
          // Copied out (small values share Node's buffer pool, as `Buffer.from` would): a value
          // decoded as a view of its bytes must not keep the whole batch's BLOB alive.
          value = Buffer.allocUnsafe(length)
          inline!.copy(value, 0, offset, offset + length)
          offset += length
        }
        found[start + at] = Option.some({
          key: keys[at],
          storedBytes: row[1],
          checksum: row[2],
          blobId: row[3],
          inline: value,
          expiresAt: row[4],
          staleUntil: row[5]
        })
      }
      return true
    }

    // Tags come as their JSON text in a named row.
    const toRecord = (
      row: Omit<EntryRecord, "tags"> & { inline?: Uint8Array | null; tags: string | null }
    ): EntryRecord => ({
      ...row,
      inline: row.inline ?? null,
      tags: row.tags === null ? undefined : parseTags(row.tags)
    })

    return makeMetadataStore({
      backend: "sqlite",
      lookup: (key) =>
        Effect.try({
          try: () => {
            const row = stmt.lookup.get(key) as Array<any> | undefined
            return row === undefined ? Option.none() : Option.some(fromLookupRow(row))
          },
          catch: (cause) => fail("MetadataStore.lookup", "QueryFailed", cause)
        }),
      lookupMany: (keys) =>
        Effect.try({
          try: () => {
            const found = new Array<Option.Option<EntryRecord>>(keys.length).fill(Option.none())
            for (const row of stmt.lookupMany.all(JSON.stringify(keys)) as Array<Array<any>>) {
              found[row[18]] = Option.some(fromLookupRow(row))
            }
            return found
          },
          catch: (cause) => fail("MetadataStore.lookupMany", "QueryFailed", cause)
        }),
      probeMany: (keys) =>
        Effect.try({
          try: () => {
            const found = new Array<Option.Option<StoredValue>>(keys.length).fill(Option.none())
            for (let start = 0; start < keys.length; start += PACKED_KEYS) {
              const chunk = keys.length <= PACKED_KEYS ? keys : keys.slice(start, start + PACKED_KEYS)
              if (!probePacked(chunk, start, found)) probeRows(chunk, start, found)
            }
            return found
          },
          catch: (cause) => fail("MetadataStore.probeMany", "QueryFailed", cause)
        }),
      probe: (key) =>
        Effect.try({
          try: () => Option.fromNullable(probeOne(key)),
          catch: (cause) => fail("MetadataStore.probe", "QueryFailed", cause)
        }),
      unsafeProbe: (key) => {
        try {
          return probeOne(key)
        } catch {
          return NotSync
        }
      },
      upsert: (record, rows, leaseHolder) =>
        Effect.try({
          try: () => upsertNow(record, rows, leaseHolder),
          catch: (cause) => upsertFailure(cause, rows)
        }),
      // The same transaction without the effect around it: a small put then needs no fiber.
      unsafeUpsert: (record, rows, leaseHolder) => {
        try {
          return upsertNow(record, rows, leaseHolder)
        } catch (cause) {
          return upsertFailure(cause, rows)
        }
      },
      upsertMany: (items) =>
        items.length === 0
          ? Effect.map(
            Effect.try({
              try: () => currentTotalBytes("never"),
              catch: (cause) => fail("MetadataStore.upsertMany", "QueryFailed", cause)
            }),
            (totalBytes) => ({ replacedBlobIds: [], totalBytes })
          )
          : Effect.try({
            try: () => (localWrites++, upsertProducedTx.immediate(items.length, (i) => items[i])),
            catch: upsertManyFailure
          }),
      unsafeUpsertMany: (count, produce) => {
        try {
          localWrites++
          return upsertProducedTx.immediate(count, produce)
        } catch (cause) {
          return cause === Abandoned ? NotSync : upsertManyFailure(cause)
        }
      },
      remove: (filter) =>
        Effect.try({
          try: () => (localWrites++, removeRows(filter)),
          catch: (cause) => fail("MetadataStore.remove", "WriteFailed", cause)
        }),
      removeCounted: (filter) =>
        Effect.try({
          try: () => (localWrites++, removeCounted(filter)),
          catch: (cause) => fail("MetadataStore.remove", "WriteFailed", cause)
        }),
      select: (filter) =>
        Effect.zipRight(
          flushFirst,
          Effect.try({
            try: () => {
              const { args, clause, limit } = where(filter)
              return (prepare(`SELECT ${RAW_COLUMNS} FROM ${TABLE}${clause}${limit}`).raw(true).all(...args) as Array<
                Array<any>
              >).map(fromRaw)
            },
            catch: (cause) => fail("MetadataStore.select", "QueryFailed", cause)
          })
        ),
      list: (options) =>
        Effect.zipRight(
          flushFirst,
          Effect.try({
            try: () => listRows(options, RAW_COLUMNS, RAW_SLOTS).map(fromRaw),
            catch: (cause) => fail("MetadataStore.list", "QueryFailed", cause)
          })
        ),
      listEntries: (options) =>
        Effect.zipRight(
          flushFirst,
          Effect.try({
            try: () => listEntryColumns(options),
            catch: (cause) => fail("MetadataStore.list", "QueryFailed", cause)
          })
        ),
      touch: (key, expiresAt, now, resign) =>
        Effect.try({
          try: () => (localWrites++,
            (resign === undefined
              ? stmt.touch.run({ expiresAt, now, key })
              : stmt.touchResigned.run({ expiresAt, now, key, to: resign.to, from: resign.from })).changes > 0),
          catch: (cause) => fail("MetadataStore.touch", "WriteFailed", cause)
        }),
      recordAccess: (key, now) => readOnly ? Effect.void : Effect.sync(() => accesses.record(key, now)),
      unsafeRecordAccess: (key, now) => {
        if (!readOnly) accesses.record(key, now)
      },
      evict: (bytes) =>
        Effect.zipRight(
          flushFirst,
          Effect.try({
            try: () => (localWrites++, evictTx.immediate(bytes)),
            catch: (cause) => fail("MetadataStore.evict", "WriteFailed", cause)
          })
        ),
      totals: Effect.zipRight(
        flushFirst,
        Effect.try({
          try: () => {
            const row = stmt.counters.get() as Totals | undefined
            if (row !== undefined) return row
            stmt.restoreCounters.run()
            return stmt.counters.get() as Totals
          },
          catch: (cause) => fail("MetadataStore.totals", "QueryFailed", cause)
        })
      ),
      namespaceTotals: (namespace) =>
        Effect.try({
          try: () => {
            if (namespace === "") {
              const row = stmt.defaultNamespaceCounters.get() as { entries: number; totalBytes: number } | undefined
              if (row !== undefined) return row
              stmt.restoreCounters.run()
              return stmt.defaultNamespaceCounters.get() as { entries: number; totalBytes: number }
            }
            const row = stmt.namespaceCounters.get(namespace) as { entries: number; totalBytes: number } | undefined
            return row ?? { entries: 0, totalBytes: 0 }
          },
          catch: (cause) => fail("MetadataStore.namespaceTotals", "QueryFailed", cause)
        }),
      repairSize: (key, blobId, checksum, storedBytes) =>
        Effect.try({
          try: () => (localWrites++, stmt.repairSize.run(storedBytes, key, blobId, checksum).changes > 0),
          catch: (cause) => fail("MetadataStore.repairSize", "WriteFailed", cause)
        }),
      // One statement: the counts and the rows they count are read in the same snapshot.
      recount: Effect.zipRight(
        flush,
        Effect.try({
          try: () => {
            recountTx.immediate()
            return stmt.counters.get() as Totals
          },
          catch: (cause) => fail("MetadataStore.recount", "WriteFailed", cause)
        })
      ),
      clear: Effect.try({
        try: () => (localWrites++, stmt.clear.all() as Array<RemovedRef>),
        catch: (cause) => fail("MetadataStore.clear", "WriteFailed", cause)
      }),
      flush,
      queryTable: (table, query) =>
        Effect.zipRight(
          flushFirst,
          Effect.try({
            try: () => {
              const def = tables.get(table)
              if (def === undefined) {
                throw new MetadataError({
                  method: "MetadataStore.queryTable",
                  reason: "UnknownTable",
                  description: `no custom metadata table ${table} is registered`
                })
              }
              const where = TableSql.whereClause("sqlite", def, query)
              const columns = def.columns.map((c) => `t.${c.name} AS "t.${c.name}"`).join(", ")
              const rows = prepare(
                `SELECT ${JOINED_COLUMNS}, ${columns} FROM ${def.name} t JOIN ${TABLE} e ON e.key = t.cache_key${where.sql}${
                  TableSql.orderClause(def, query)
                }`
              ).all(...where.params) as Array<Record<string, unknown>>
              return rows.map((r): TableMatch => {
                const row: Record<string, unknown> = {}
                for (const c of def.columns) {
                  row[c.name] = r[`t.${c.name}`]
                  delete r[`t.${c.name}`]
                }
                return { record: toRecord(r as any), row }
              })
            },
            catch: (cause) =>
              cause instanceof MetadataError ? cause : fail("MetadataStore.queryTable", "QueryFailed", cause)
          })
        ),
      sql: client,
      // The paths of a tree share its directory: one range scan of the primary key under it costs
      // ~1 ms for 1,000 files where a point lookup each costs 15+ ms. Few paths: point lookups.
      lookupFingerprints: (paths) =>
        Effect.try({
          try: () => {
            const out: Array<PathFingerprint> = []
            const prefix = paths.length >= 16 ? commonDirectory(paths) : ""
            if (prefix !== "") {
              const wanted = new Set(paths)
              // Every string starting with `prefix` sorts (bytewise) before the prefix with its last
              // character, an ASCII separator, incremented.
              const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1)
              for (const row of stmt.fingerprintRange.iterate(prefix, end) as IterableIterator<PathFingerprint>) {
                if (wanted.has(row.path)) out.push(row)
              }
              return out
            }
            for (const p of paths) {
              const row = stmt.fingerprint.get(p) as PathFingerprint | undefined
              if (row !== undefined) out.push(row)
            }
            return out
          },
          catch: (cause) => fail("MetadataStore.lookupFingerprints", "QueryFailed", cause)
        }),
      saveFingerprints: (rows) =>
        rows.length === 0 ? Effect.void : Effect.try({
          try: () => saveFingerprintsTx.immediate(rows),
          catch: (cause) => fail("MetadataStore.saveFingerprints", "WriteFailed", cause)
        }),
      fingerprintPaths: (after, limit) =>
        Effect.try({
          // "" sorts before every path (BINARY collation: byte order).
          try: () => stmt.fingerprintPaths.all(after ?? "", limit) as Array<string>,
          catch: (cause) => fail("MetadataStore.fingerprintPaths", "QueryFailed", cause)
        }),
      deleteFingerprints: (paths) =>
        paths.length === 0 ? Effect.succeed(0) : Effect.try({
          try: () => deleteFingerprintsTx.immediate(paths),
          catch: (cause) => fail("MetadataStore.deleteFingerprints", "WriteFailed", cause)
        }),
      acquireLease: (key, holder, until, now) =>
        Effect.try({
          try: () => stmt.acquireLease.run(key, holder, until, now).changes > 0,
          catch: (cause) => fail("MetadataStore.acquireLease", "WriteFailed", cause)
        }),
      acquireLeaseIfAbsent: (key, holder, until, now, liveAt) =>
        Effect.try({
          try: () => stmt.acquireLeaseIfAbsent.run({ key, holder, until, now, liveAt }).changes > 0,
          catch: (cause) => fail("MetadataStore.acquireLease", "WriteFailed", cause)
        }),
      releaseLease: (key, holder) =>
        Effect.try({
          try: () => void stmt.releaseLease.run(key, holder),
          catch: (cause) => fail("MetadataStore.releaseLease", "WriteFailed", cause)
        }),
      changeCount: () => (stmt.dataVersion.get() as number) + localWrites
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: SqliteStoreOptions): Layer.Layer<MetadataStore, MetadataError> =>
  Layer.scoped(MetadataStore, make(options))
