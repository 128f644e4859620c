/**
 * A stock-price cache in front of a slow, rate-limited API.
 *
 * The "API" here is a local fake (no network): 40 ms per call, no rows on weekends. Run with
 * `npx tsx examples/stock-cache.ts [duckdb|sqlite]`; the DuckDB database lives in memory unless
 * you pass a file with `--file stocks.duckdb`.
 */
import * as Console from "effect/Console"
import * as Data from "effect/Data"
import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schema from "effect/Schema"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { SqlPullThrough } from "../src/index.js"

// --- the slow source: a local fake of a market-data API ---------------------------------------
class MarketApiError extends Data.TaggedError("MarketApiError")<{ readonly message: string }> {}

const apiCalls: Array<string> = []
const marketApi = (symbol: string, start: Date, end: Date) =>
  Effect.gen(function*() {
    apiCalls.push(`${symbol} ${start.toISOString().slice(0, 10)} → ${end.toISOString().slice(0, 10)}`)
    yield* Effect.sleep("40 millis") // the network we don't have
    if (symbol === "FAIL") return yield* new MarketApiError({ message: "symbol not listed" })
    const rows: Array<{ symbol: string; date: Date; close: number }> = []
    for (let t = start.getTime(); t <= end.getTime(); t += 86_400_000) {
      const date = new Date(t)
      if (date.getUTCDay() === 0 || date.getUTCDay() === 6) continue // markets are closed
      rows.push({ symbol, date, close: Math.round((150 + 10 * Math.sin(t / 6e8)) * 100) / 100 })
    }
    return rows
  })

// --- the cached table ---------------------------------------------------------------------------
const Prices = SqlPullThrough.table({
  name: "stock_prices",
  columns: Schema.Struct({ symbol: Schema.String, date: Schema.Date, close: Schema.Number }),
  primaryKey: ["symbol", "date"],
  range: { column: "date", step: "1 day" }
})

const program = Effect.gen(function*() {
  const stocks = yield* SqlPullThrough.make({
    table: Prices,
    query: (q: { symbol: string; start: string; end: string }) => ({
      filters: { symbol: q.symbol },
      range: { start: q.start, end: q.end }
    }),
    fetch: ({ filters, range }) => marketApi(filters.symbol!, range.start, range.end),
    // history is final after a week; the last few days may still be corrected
    ttl: SqlPullThrough.ttlByAge({ recent: "1 hour", tiers: [{ olderThan: "7 days", ttl: null }] })
  })

  const step = (label: string, q: { symbol: string; start: string; end: string }) =>
    Effect.gen(function*() {
      const before = apiCalls.length
      const started = performance.now()
      const rows = yield* stocks.get(q)
      const ms = (performance.now() - started).toFixed(1)
      const fetched = apiCalls.slice(before)
      yield* Console.log(
        `${label.padEnd(34)} ${String(rows.length).padStart(3)} rows  ${ms.padStart(6)} ms  ` +
          (fetched.length === 0 ? "answered locally" : `fetched ${fetched.join(", ")}`)
      )
      return rows
    })

  yield* step("Q1 2024", { symbol: "AAPL", start: "2024-01-01", end: "2024-03-31" })
  yield* step("Q1 2024 again", { symbol: "AAPL", start: "2024-01-01", end: "2024-03-31" })
  yield* step("February only", { symbol: "AAPL", start: "2024-02-01", end: "2024-02-29" })
  yield* step("Dec 2023 – Apr 2024 (head + tail)", { symbol: "AAPL", start: "2023-12-01", end: "2024-04-30" })
  yield* step("a weekend (no rows, still covered)", { symbol: "AAPL", start: "2024-05-04", end: "2024-05-05" })
  yield* step("the same weekend again", { symbol: "AAPL", start: "2024-05-04", end: "2024-05-05" })
  yield* stocks.invalidate({ symbol: "AAPL" }, { start: "2024-02-10", end: "2024-02-20" })
  yield* step("after invalidating Feb 10–20", { symbol: "AAPL", start: "2024-01-01", end: "2024-03-31" })
  yield* step("another symbol", { symbol: "MSFT", start: "2024-01-01", end: "2024-01-31" })

  const failed = yield* Effect.flip(stocks.get({ symbol: "FAIL", start: "2024-01-01", end: "2024-01-05" }))
  yield* Console.log(`a failing source surfaces its own typed error: ${failed._tag}: ${failed.message}`)

  const arrow = yield* stocks.getArrow({ symbol: "AAPL", start: "2024-03-01", end: "2024-03-08" })
  yield* Console.log(
    `as Arrow: ${arrow.numRows} rows, columns ${arrow.schema.fields.map((f) => `${f.name}:${f.type}`).join(", ")}`
  )

  const stats = yield* stocks.stats()
  yield* Console.log(
    `stats: ${stats.rows} rows, ${stats.intervals} ledger intervals, ${stats.filterSets} symbols, ` +
      `${stats.hits} hits / ${stats.misses} misses, ${stats.fetches} API calls`
  )
})

const backend = process.argv[2] ?? "duckdb"
const fileFlag = process.argv.indexOf("--file")
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-stocks-"))
const layer = backend === "sqlite"
  ? SqlPullThrough.layerSqlite({ filename: path.join(dir, "stocks.db") })
  : SqlPullThrough.layerDuckDB({ filename: fileFlag > 0 ? process.argv[fileFlag + 1] : undefined })

await Console.log(`stock cache on ${backend}`).pipe(
  Effect.zipRight(program),
  Effect.provide(layer),
  Effect.provide(Logger.minimumLogLevel(LogLevel.Warning)),
  Effect.ensuring(Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true }))),
  Effect.runPromise
)
