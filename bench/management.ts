/**
 * Management operations on a 10,000-entry cache, per metadata backend: `list()` of every entry,
 * `stats()`, and `cleanupExpired()` with half the entries expired. Printed beside the seed's
 * claims, python-diskcache 5.4 (measured in the same run by `bench/peer/diskcache_bench.py
 * management` when installed: its rows with decoded keys and sizes, `len` + `volume()`, `expire()`;
 * MEASURED.md's figures otherwise) and a bare better-sqlite3 table doing the same three things.
 *
 * SQLite and memory are filled through `put`; JSON and PostgreSQL get the same records written in
 * bulk (a put per entry rewrites the whole JSON file, and 10,000 round trips to PostgreSQL only
 * measure the network), which does not change what the three operations do.
 */
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as MetadataStoreJson from "../src/metadata/json.js"
import type { EntryRecord } from "../src/metadata/service.js"
import { cacheness } from "../src/promise.js"
import { benchDir, diskcachePeer, fmt, isMain, keyOf, now, percentile, ratio, table } from "./support.js"

const N = 10_000
const RUNS = 7
/** `stats()` is microseconds: a median of 7 would mostly time the first, unoptimised calls. */
const STATS_RUNS = 101
const PG_URL = process.env.CACHENESS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const valueOf = (i: number) => ({
  id: i,
  name: `user-${i}`,
  email: `user${i}@example.com`,
  tags: ["alpha", "beta"],
  score: i / 7
})

interface Figures {
  readonly list: number
  /** SQLite only: the same entries listed by hand with better-sqlite3 from the cache's own file. */
  readonly byHand?: { readonly median: number; readonly best: number } | undefined
  /** The fastest of the runs: on a shared, loaded machine the median mostly measures the others. */
  readonly listBest?: number | undefined
  readonly stats: number
  readonly cleanup: number
  readonly removed: number
}

/** Median and best of `RUNS` timings of a non-destructive operation, in ms. */
const timings = <A, E, R>(self: Effect.Effect<A, E, R>, runs = RUNS) =>
  Effect.gen(function*() {
    const samples: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const t = now()
      yield* self
      samples.push(now() - t)
    }
    return { median: percentile(samples, 50), best: Math.min(...samples) }
  })

/**
 * What `list()` returns, written the obvious way with better-sqlite3 on the cache's own database:
 * one `.all()` of the entry columns under their entry names, in insertion order, params, metadata
 * and tags parsed. The bare table above lists 5 columns and parses nothing; this is the same result as ours.
 */
const listByHand = (database: string) => {
  const db = new Database(database, { readonly: true })
  const statement = db.prepare(`SELECT key, namespace, description, format, codec, stored_bytes AS storedBytes,
    raw_bytes AS rawBytes, created_at AS createdAt, accessed_at AS accessedAt, expires_at AS expiresAt, hits, params,
    metadata, stale_until AS staleUntil, tags FROM cacheness_entries ORDER BY rowid`)
  const list = () => {
    const rows = statement.all() as Array<{ params: unknown; metadata: unknown; tags: unknown }>
    for (const row of rows) {
      row.params = row.params === null ? null : JSON.parse(row.params as string)
      row.metadata = row.metadata === null ? null : JSON.parse(row.metadata as string)
      row.tags = row.tags === null ? [] : JSON.parse(row.tags as string)
    }
    return rows
  }
  return { list, close: () => db.close() }
}

const measure = (cache: Cache.Cache.Service, database?: string) =>
  Effect.gen(function*() {
    const all = yield* cache.list()
    if (all.length !== N) throw new Error(`expected ${N} entries, listed ${all.length}`)
    let byHand: Figures["byHand"]
    if (database !== undefined) {
      const hand = listByHand(database)
      const same = hand.list()
      if (JSON.stringify(same) !== JSON.stringify(all)) throw new Error("the listing by hand differs from list()")
      byHand = yield* timings(Effect.sync(hand.list))
      hand.close()
    }
    const list = yield* timings(cache.list())
    const stats = (yield* timings(cache.stats(), STATS_RUNS)).median
    const t = now()
    const removed = yield* cache.cleanupExpired()
    const cleanup = now() - t
    if (removed !== N / 2) throw new Error(`expected ${N / 2} expired entries, removed ${removed}`)
    return { list: list.median, listBest: list.best, byHand, stats, cleanup, removed } satisfies Figures
  })

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null } as const

/** Fills through `put`: even entries expire after 1 ms, odd ones never. */
const viaPut = (layer: Layer.Layer<Cache.Cache, unknown>, database?: string) =>
  Effect.runPromise(Effect.scoped(Effect.provide(
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      for (let i = 0; i < N; i++) yield* cache.put(keyOf(i), valueOf(i), { ttl: i % 2 === 0 ? 1 : null })
      yield* Effect.sleep("20 millis")
      return yield* measure(cache, database)
    }),
    layer
  )))

/**
 * The same through the Promise API (`cacheness(...)`), as a user calls it and as issue 21 measured
 * it: filled through `put`, then `list()` and `stats()` timed around each awaited call.
 */
const viaPromise = async (directory: string): Promise<Figures> => {
  const client = cacheness({ ...quiet, directory })
  try {
    for (let i = 0; i < N; i++) await client.put(keyOf(i), valueOf(i), { ttl: i % 2 === 0 ? 1 : null })
    await new Promise((resolve) => setTimeout(resolve, 20))
    const timed = async (f: () => Promise<unknown>, runs = RUNS) => {
      const samples: Array<number> = []
      for (let i = 0; i < runs; i++) {
        const t = now()
        await f()
        samples.push(now() - t)
      }
      return { median: percentile(samples, 50), best: Math.min(...samples) }
    }
    if ((await client.list()).length !== N) throw new Error(`expected ${N} entries through the Promise API`)
    const list = await timed(() => client.list())
    const stats = (await timed(() => client.stats(), STATS_RUNS)).median
    const t = now()
    const removed = await client.cleanupExpired()
    const cleanup = now() - t
    if (removed !== N / 2) throw new Error(`expected ${N / 2} expired entries, removed ${removed}`)
    return { list: list.median, listBest: list.best, stats, cleanup, removed }
  } finally {
    await client.close()
  }
}

/** The records a put of entry `i` would write, with even ones already expired at `at`. */
const records = (at: number): Array<EntryRecord> =>
  Array.from({ length: N }, (_, i) => {
    const inline = new TextEncoder().encode(JSON.stringify(valueOf(i)))
    return {
      key: (0x1000_0000_0000 + i).toString(16).padStart(16, "0"),
      namespace: "",
      description: null,
      format: "json",
      codec: "none",
      storedBytes: inline.length,
      rawBytes: inline.length,
      checksum: "0123456789abcdef",
      blobId: null,
      inline,
      createdAt: at - 10_000,
      accessedAt: at - 10_000,
      expiresAt: i % 2 === 0 ? at - 1 : null,
      hits: 0,
      params: JSON.stringify(keyOf(i)),
      metadata: null
    }
  })

const json = (): Promise<Figures> => {
  const directory = benchDir("mgmt-json")
  MetadataStoreJson.writeIndex(path.join(directory, "cacheness.json"), records(Date.now()))
  return Effect.runPromise(Effect.scoped(Effect.provide(
    Effect.flatMap(Cache.Cache, measure),
    Cache.layer({ ...quiet, directory, metadataBackend: "json" })
  )))
}

const postgres = (): Promise<Figures> => {
  const schema = `bench_mgmt_${Math.random().toString(36).slice(2, 8)}`
  const layer = Cache.layer({
    ...quiet,
    metadataBackend: "postgres",
    blobs: "postgres",
    postgres: { url: PG_URL, schema }
  })
  return Effect.runPromise(Effect.scoped(Effect.provide(
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const sql = yield* cache.sql
      const rs = records(Date.now())
      const column = <K extends keyof EntryRecord>(k: K) => rs.map((r) => r[k])
      yield* sql.unsafe(
        `INSERT INTO ${schema}.cacheness_entries (key, namespace, format, codec, stored_bytes, raw_bytes, checksum,
           inline_value, created_at, accessed_at, expires_at, params)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[],
           $8::bytea[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[])`,
        [
          column("key"),
          column("namespace"),
          column("format"),
          column("codec"),
          column("storedBytes"),
          column("rawBytes"),
          column("checksum"),
          rs.map((r) => Buffer.from(r.inline!)),
          column("createdAt"),
          column("accessedAt"),
          column("expiresAt"),
          column("params")
        ]
      )
      const figures = yield* measure(cache)
      yield* sql.unsafe(`DROP SCHEMA ${schema} CASCADE`)
      return figures
    }),
    layer
  )))
}

/** The floor: one bare better-sqlite3 table doing the same three things. */
const bareSqlite = (): Figures => {
  const db = new Database(path.join(benchDir("mgmt-raw"), "raw.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.exec(
    `CREATE TABLE t (key TEXT PRIMARY KEY, size INTEGER, created_at INTEGER, expires_at INTEGER, params TEXT, value BLOB);
    CREATE INDEX t_exp ON t(expires_at)`
  )
  const insert = db.prepare(`INSERT INTO t VALUES (?, ?, ?, ?, ?, ?)`)
  const at = Date.now()
  db.transaction(() => {
    for (const r of records(at)) insert.run(r.key, r.storedBytes, r.createdAt, r.expiresAt, r.params, r.inline)
  })()
  const time = (f: () => unknown, runs = RUNS) => {
    const samples: Array<number> = []
    for (let i = 0; i < runs; i++) {
      const t = now()
      f()
      samples.push(now() - t)
    }
    return percentile(samples, 50)
  }
  const listStatement = db.prepare(`SELECT key, size, created_at, expires_at, params FROM t`)
  const listBest = ((): number => {
    let best = Infinity
    for (let i = 0; i < RUNS; i++) {
      const t = now()
      listStatement.all()
      best = Math.min(best, now() - t)
    }
    return best
  })()
  const list = time(() => listStatement.all())
  const stats = time(() => db.prepare(`SELECT count(*), sum(size) FROM t`).get(), STATS_RUNS)
  const t = now()
  const removed = db.prepare(`DELETE FROM t WHERE expires_at <= ?`).run(at).changes
  const cleanup = now() - t
  db.close()
  return { list, listBest, stats, cleanup, removed }
}

export const run = async (): Promise<void> => {
  const rows: Array<Array<string>> = [[
    "backend (10,000 entries)",
    "list() ms",
    "(best)",
    "stats() ms",
    "cleanupExpired() ms",
    "seed claims (list / stats / cleanup)"
  ]]
  const row = (name: string, f: Figures | string, claim = "") =>
    rows.push(
      typeof f === "string"
        ? [name, f, "", "", "", claim]
        : [name, fmt(f.list), fmt(f.listBest), fmt(f.stats, 3), fmt(f.cleanup), claim]
    )
  const directory = benchDir("mgmt-sqlite")
  const sqlite = await viaPut(Cache.layer({ ...quiet, directory }), path.join(directory, "cacheness.db"))
  row("cacheness SQLite", sqlite, "2.3 / 4.1 / 12 ms")
  const promise = await viaPromise(benchDir("mgmt-promise"))
  row("cacheness SQLite, Promise API", promise, "what issue 21 measured")
  row("cacheness JSON", await json(), "1.2 s / 850 ms / 1.5 s")
  try {
    row("cacheness PostgreSQL", await postgres())
  } catch (error) {
    row("cacheness PostgreSQL", `skipped: ${String(error).split("\n")[0].slice(0, 60)}`)
  }
  row("cacheness memory", await viaPut(Cache.layerMemory(quiet)))
  const raw = bareSqlite()
  row("bare better-sqlite3 table", raw)
  if (sqlite.byHand !== undefined) {
    rows.push([
      "same entries by hand (better-sqlite3)",
      fmt(sqlite.byHand.median),
      fmt(sqlite.byHand.best),
      "",
      "",
      "what list() returns"
    ])
  }
  const peerDirectory = benchDir("mgmt-diskcache")
  const peer = diskcachePeer<Figures>("management", peerDirectory)
  fs.rmSync(peerDirectory, { recursive: true, force: true })
  if (peer === undefined) rows.push(["python-diskcache 5.4 (MEASURED.md)", "54", "28", "0.2", "105", "peer"])
  else row("python-diskcache 5.4 (this run)", peer, "peer")
  table(
    "Management operations: list all / stats / cleanupExpired (half expired); median and best of 7 (stats: median of 101; cleanup once)",
    rows
  )
  console.log(
    `cacheness SQLite through the Promise API vs the peer: list ${
      ratio(promise.list, peer?.list, "diskcache")
    } (target ≤ 1.0; best ${ratio(promise.listBest, peer?.listBest, "diskcache")}), count + size ${
      ratio(promise.stats, peer?.stats, "diskcache")
    } (target ≤ 2.0)`
  )
  console.log(
    `cacheness SQLite vs the peer and the bare table: list ${
      ratio(sqlite.list, peer?.list, "diskcache")
    } (target ≤ 1.0), ` +
      `${ratio(sqlite.list, raw.list, "bare SQLite")}; count + size ${
        ratio(sqlite.stats, peer?.stats, "diskcache")
      } (target ≤ 2.0), ` +
      `${ratio(sqlite.stats, raw.stats, "bare SQLite")}; expire 5,000 ${
        ratio(sqlite.cleanup, peer?.cleanup, "diskcache")
      }, ` +
      `${ratio(sqlite.cleanup, raw.cleanup, "bare SQLite")} (times: lower is better)`
  )
  console.log("Targets for SQLite: list ≤ 12 ms, stats ≤ 1 ms, cleanupExpired ≤ 12 ms.")
}

if (isMain(import.meta.url)) await run()
