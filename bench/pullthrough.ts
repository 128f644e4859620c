/**
 * SqlPullThrough benchmarks: `get` of a fully covered 10,000-row range per backend, and gap
 * computation against a ledger of 10,000 intervals (in memory, and end to end through SQL).
 *
 * `npx tsx bench/pullthrough.ts` alone, or `run()` from `bench/index.ts`.
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Ranges from "../src/pullthrough/ranges.js"
import { LEDGER } from "../src/pullthrough/sql.js"
import * as SqlPullThrough from "../src/SqlPullThrough.js"

// Small local helpers, so this file runs on its own.
const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}
const fmt = (n: number, digits = 1): string =>
  Number.isNaN(n) ? "—" : n >= 10_000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits)
const table = (title: string, rows: ReadonlyArray<ReadonlyArray<string>>): void => {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)))
  console.log(`\n${title}`)
  rows.forEach((row, i) => {
    console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  "))
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "))
  })
}

const ROWS = 10_000
const INTERVALS = 10_000
const DAY = 86_400_000
const BASE = Date.UTC(1990, 0, 1)
const day = (n: number) => new Date(BASE + n * DAY)
const PG_URL = process.env.CACHENESS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const Prices = (name: string) =>
  SqlPullThrough.table({
    name,
    columns: Schema.Struct({ symbol: Schema.String, date: Schema.Date, close: Schema.Number, volume: Schema.Number }),
    primaryKey: ["symbol", "date"],
    range: { column: "date", step: "1 day" }
  })

const timeIt = async (times: number, f: () => Promise<unknown>) => {
  const samples: Array<number> = []
  for (let i = 0; i < times; i++) {
    const t = performance.now()
    await f()
    samples.push(performance.now() - t)
  }
  return samples
}

interface Result {
  readonly backend: string
  readonly fill: number
  readonly full: ReadonlyArray<number>
  readonly small: ReadonlyArray<number>
  readonly arrow: ReadonlyArray<number>
  readonly missing: ReadonlyArray<number>
}

const measure = (
  backend: string,
  layer: Layer.Layer<SqlPullThrough.SqlPullThrough, SqlPullThrough.SqlPullThroughError>
) =>
  Effect.gen(function*() {
    const service = yield* SqlPullThrough.SqlPullThrough
    const name = `bench_${process.pid}_${backend.replace(/[^a-z]+/g, "_")}`
    type Q = { from: number; to: number }
    const cache = yield* SqlPullThrough.make({
      table: Prices(name),
      query: (q: Q) => ({ filters: { symbol: "BENCH" }, range: { start: day(q.from), end: day(q.to) } }),
      fetch: ({ range }) =>
        Effect.sync(() => {
          const rows = []
          for (let t = range.start.getTime(); t <= range.end.getTime(); t += DAY) {
            rows.push({ symbol: "BENCH", date: new Date(t), close: 100 + (t % 997) / 10, volume: t % 100_003 })
          }
          return rows
        }),
      ttl: null
    })
    yield* cache.clear()
    const run = <A>(e: Effect.Effect<A, unknown>) => () => Effect.runPromise(e as Effect.Effect<A, never>)
    const fillStart = performance.now()
    yield* cache.get({ from: 0, to: ROWS - 1 })
    const fill = performance.now() - fillStart
    yield* Effect.promise(run(cache.get({ from: 0, to: ROWS - 1 }))) // warm up
    const full = yield* Effect.promise(() => timeIt(20, run(cache.get({ from: 0, to: ROWS - 1 }))))
    const small = yield* Effect.promise(() => timeIt(200, run(cache.get({ from: 5000, to: 5029 }))))
    const arrow = yield* Effect.promise(() => timeIt(10, run(cache.getArrow({ from: 0, to: ROWS - 1 }))))

    // A ledger of 10,000 intervals (every other day covered) for another filter set.
    const sql = service.sql
    const ledger = service.schema === undefined ? LEDGER : `${service.schema}.${LEDGER}`
    const key = JSON.stringify([["symbol", "HOLES"]])
    const entries = Array.from({ length: INTERVALS }, (_, i) => ({
      table_name: name,
      filters_key: key,
      range_start: day(2 * i).getTime(),
      range_end: day(2 * i + 1).getTime(),
      fetched_at: 0,
      expires_at: null
    }))
    yield* sql.withTransaction(Effect.forEach(
      Array.from({ length: Math.ceil(INTERVALS / 1000) }, (_, c) => entries.slice(c * 1000, c * 1000 + 1000)),
      (chunk) => sql`INSERT INTO ${sql(ledger)} ${sql.insert(chunk)}`,
      { discard: true }
    ))
    const holes = yield* SqlPullThrough.make({
      table: Prices(name),
      query: (q: Q) => ({ filters: { symbol: "HOLES" }, range: { start: day(q.from), end: day(q.to) } }),
      fetch: () => Effect.succeed([]),
      ttl: null
    })
    const gaps = yield* holes.missing({ from: 0, to: 2 * INTERVALS - 1 })
    if (gaps.length !== INTERVALS) throw new Error(`expected ${INTERVALS} gaps, got ${gaps.length}`)
    const missing = yield* Effect.promise(() => timeIt(10, run(holes.missing({ from: 0, to: 2 * INTERVALS - 1 }))))
    yield* cache.clear()
    return { backend, fill, full, small, arrow, missing } satisfies Result
  }).pipe(Effect.provide(layer), Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)))

/**
 * Prints the tables.
 *
 * @since 0.1.0
 */
export const run = async (): Promise<void> => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-bench-pullthrough-"))
  const schema = `bench_${process.pid}`
  const backends: Array<
    readonly [string, Layer.Layer<SqlPullThrough.SqlPullThrough, SqlPullThrough.SqlPullThroughError>]
  > = [
    ["duckdb (memory)", SqlPullThrough.layerDuckDB()],
    ["duckdb (file)", SqlPullThrough.layerDuckDB({ filename: path.join(dir, "bench.duckdb") })],
    ["sqlite (file)", SqlPullThrough.layerSqlite({ filename: path.join(dir, "bench.db") })],
    ["postgres", SqlPullThrough.layerPg({ url: PG_URL, schema })]
  ]
  const results: Array<Result> = []
  const skipped: Array<string> = []
  for (const [name, layer] of backends) {
    const exit = await Effect.runPromiseExit(measure(name, layer).pipe(Effect.timeout("120 seconds")))
    if (exit._tag === "Success") results.push(exit.value)
    else skipped.push(`${name}: ${String(exit.cause).split("\n")[0]}`)
  }
  if (results.some((r) => r.backend === "postgres")) {
    await Effect.runPromise(
      Effect.gen(function*() {
        const { sql } = yield* SqlPullThrough.SqlPullThrough
        yield* sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`)
      }).pipe(Effect.provide(SqlPullThrough.layerPg({ url: PG_URL })), Effect.orDie)
    ).catch(() => undefined)
  }
  fs.rmSync(dir, { recursive: true, force: true })

  table(`SqlPullThrough — get of a fully covered ${ROWS.toLocaleString("en-US")}-row range (4 columns), ms`, [
    ["backend", "fill (1 fetch)", "get p50", "get p95", "rows/s (p50)", "30-row get p50", "getArrow p50"],
    ...results.map((r) => [
      r.backend,
      fmt(r.fill),
      fmt(percentile(r.full, 50), 2),
      fmt(percentile(r.full, 95), 2),
      fmt(ROWS / (percentile(r.full, 50) / 1000), 0),
      fmt(percentile(r.small, 50), 3),
      fmt(percentile(r.arrow, 50), 2)
    ])
  ])

  // The pure part: subtract 10,000 covered intervals from one request.
  const covered = Array.from({ length: INTERVALS }, (_, i) => ({ lo: 2 * i, hi: 2 * i }))
  const shuffled = [...covered].sort(() => Math.random() - 0.5)
  const pure = await timeIt(50, async () => Ranges.subtract({ lo: 0, hi: 2 * INTERVALS - 1 }, shuffled))
  table(
    `SqlPullThrough — gap computation with ${INTERVALS.toLocaleString("en-US")} ledger intervals (→ ${
      INTERVALS.toLocaleString("en-US")
    } gaps), ms`,
    [
      ["where", "p50", "p95"],
      ["in memory (ranges.subtract, unsorted input)", fmt(percentile(pure, 50), 2), fmt(percentile(pure, 95), 2)],
      ...results.map((
        r
      ) => [
        `${r.backend}: missing() incl. ledger query`,
        fmt(percentile(r.missing, 50), 2),
        fmt(percentile(r.missing, 95), 2)
      ])
    ]
  )
  for (const s of skipped) console.log(`skipped ${s}`)
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === new URL(import.meta.url).pathname) await run()
