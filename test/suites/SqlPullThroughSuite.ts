/**
 * The SqlPullThrough contract: every backend (DuckDB, SQLite, PostgreSQL) must pass it.
 */
import { assert, describe, it } from "@effect/vitest"
import * as Chunk from "effect/Chunk"
import * as Data from "effect/Data"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as TestClock from "effect/TestClock"
import * as fc from "fast-check"
import * as SqlPullThrough from "../../src/SqlPullThrough.js"

/** The fake source's typed failure. */
export class ApiError extends Data.TaggedError("ApiError")<{ readonly message: string }> {}

const DAY = 86_400_000
const BASE = Date.UTC(2024, 0, 1) // a Monday
/** Day `n` after 2024-01-01 (day 0). */
export const day = (n: number): Date => new Date(BASE + n * DAY)
const dayIndex = (d: Date) => Math.round((d.getTime() - BASE) / DAY)
const isWeekend = (d: Date) => d.getUTCDay() === 0 || d.getUTCDay() === 6

let tableCounter = 0
const uniqueName = (prefix: string) =>
  `${prefix}_${process.pid}_${++tableCounter}_${Math.random().toString(36).slice(2, 6)}`

/** A stock-price table with a unique name (tests share a database). */
export const pricesTable = (prefix = "prices") =>
  SqlPullThrough.table({
    name: uniqueName(prefix),
    columns: Schema.Struct({ symbol: Schema.String, date: Schema.Date, close: Schema.Number }),
    primaryKey: ["symbol", "date"],
    range: { column: "date", step: "1 day" }
  })

type Prices = ReturnType<typeof pricesTable>
type Row = SqlPullThrough.PullThroughTable.Row<Prices>

/** A fake API that counts calls, records the requested intervals (as day numbers), and can fail. */
export const makeFakeApi = (options: {
  readonly skipWeekends?: boolean
  readonly failIf?: (start: number, end: number) => boolean
  readonly extraDays?: number
} = {}) => {
  const calls: Array<{ readonly symbol: string; readonly start: number; readonly end: number }> = []
  let version = 1
  const fetch = (req: SqlPullThrough.FetchRequest<Prices>): Effect.Effect<ReadonlyArray<Row>, ApiError> =>
    Effect.gen(function*() {
      const start = dayIndex(req.range.start)
      const end = dayIndex(req.range.end)
      calls.push({ symbol: req.filters.symbol!, start, end })
      // Let other fibers run: concurrent callers must not slip past the lock.
      for (let i = 0; i < 5; i++) yield* Effect.yieldNow()
      if (options.failIf?.(start, end)) return yield* new ApiError({ message: `no data for ${start}..${end}` })
      const rows: Array<Row> = []
      for (let i = start; i <= end + (options.extraDays ?? 0); i++) {
        const date = day(i)
        if (options.skipWeekends && isWeekend(date)) continue
        rows.push({ symbol: req.filters.symbol!, date, close: version * 1000 + i })
      }
      return rows
    })
  return {
    calls,
    fetch,
    bump: () => {
      version++
    }
  }
}

type Query = { readonly symbol: string; readonly from: number; readonly to: number }
const query = (q: Query) => ({ filters: { symbol: q.symbol }, range: { start: day(q.from), end: day(q.to) } })

/**
 * Waits, in real time, until the background fiber sleeps on the TestClock again: it does real
 * database I/O between ticks, which the TestClock cannot see.
 */
/**
 * Waits (in real time) until the scheduled refresh fiber is asleep until its next run, at least
 * 59 minutes of test time away. Shorter sleeps — a database client's timeouts, say — don't count:
 * they mean the refresh is still working.
 */
const untilAsleep = Effect.gen(function*() {
  const until = performance.now() + 10_000
  const asleep = Effect.gen(function*() {
    const now = yield* TestClock.currentTimeMillis
    return Chunk.some(yield* TestClock.sleeps(), (at) => at >= now + 59 * 60_000)
  })
  while (!(yield* asleep)) {
    if (performance.now() > until) return yield* Effect.dieMessage("the scheduled fiber never went back to sleep")
    yield* Effect.promise(() => new Promise((r) => setTimeout(r, 2)))
  }
})

const quiet = Logger.minimumLogLevel(LogLevel.Warning)

/**
 * Runs the contract against the backend the layer provides. Tables get unique names, so the
 * layer may be a shared database.
 */
export const sqlPullThroughSuite = (
  name: string,
  makeLayer: () => Layer.Layer<SqlPullThrough.SqlPullThrough, SqlPullThrough.SqlPullThroughError>
) =>
  describe(`SqlPullThrough contract (${name})`, () => {
    const run = <A, E>(effect: Effect.Effect<A, E, SqlPullThrough.SqlPullThrough>) =>
      effect.pipe(Effect.provide(makeLayer()), Effect.provide(quiet))

    const setup = (api = makeFakeApi(), extra: Partial<SqlPullThrough.MakeOptions<Prices, Query, ApiError>> = {}) =>
      SqlPullThrough.make({
        table: pricesTable(),
        query,
        fetch: api.fetch,
        ttl: "1 day",
        retry: Schedule.recurs(0),
        ...extra
      })

    it.effect("the first get fetches once and returns the range ordered by primary key", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        const rows = yield* cache.get({ symbol: "AAPL", from: 0, to: 30 })
        assert.deepStrictEqual(api.calls, [{ symbol: "AAPL", start: 0, end: 30 }])
        assert.strictEqual(rows.length, 31)
        assert.deepStrictEqual(rows.map((r) => dayIndex(r.date)), Array.from({ length: 31 }, (_, i) => i))
        assert.instanceOf(rows[0]!.date, Date)
        assert.strictEqual(rows[5]!.close, 1005)
      })))

    it.effect("a repeat fetches nothing", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        const first = yield* cache.get({ symbol: "AAPL", from: 0, to: 30 })
        const second = yield* cache.get({ symbol: "AAPL", from: 0, to: 30 })
        const inner = yield* cache.get({ symbol: "AAPL", from: 3, to: 9 })
        assert.strictEqual(api.calls.length, 1)
        assert.deepStrictEqual(second, first)
        assert.strictEqual(inner.length, 7)
        const stats = yield* cache.stats()
        assert.strictEqual(stats.hits, 2)
        assert.strictEqual(stats.misses, 1)
      })))

    it.effect("an extended range fetches only the new head and tail", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        yield* cache.get({ symbol: "AAPL", from: 10, to: 20 })
        const rows = yield* cache.get({ symbol: "AAPL", from: 5, to: 25 })
        assert.deepStrictEqual(api.calls.slice(1).sort((a, b) => a.start - b.start), [
          { symbol: "AAPL", start: 5, end: 9 },
          { symbol: "AAPL", start: 21, end: 25 }
        ])
        assert.strictEqual(rows.length, 21)
        yield* cache.get({ symbol: "AAPL", from: 5, to: 40 })
        assert.deepStrictEqual(api.calls[3], { symbol: "AAPL", start: 26, end: 40 })
        // another symbol is another filter set: fetched on its own
        yield* cache.get({ symbol: "MSFT", from: 10, to: 20 })
        assert.deepStrictEqual(api.calls[4], { symbol: "MSFT", start: 10, end: 20 })
      })))

    it.effect("an interior hole (after invalidate of a middle span) fetches only the hole", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        yield* cache.get({ symbol: "AAPL", from: 0, to: 30 })
        const removed = yield* cache.invalidate({ symbol: "AAPL" }, { start: day(10), end: day(12) })
        assert.strictEqual(removed, 3)
        const rows = yield* cache.get({ symbol: "AAPL", from: 0, to: 30 })
        assert.deepStrictEqual(api.calls[1], { symbol: "AAPL", start: 10, end: 12 })
        assert.strictEqual(api.calls.length, 2)
        assert.strictEqual(rows.length, 31)
      })))

    it.effect("an empty answer (a weekend) counts as covered and is not refetched", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi({ skipWeekends: true })
        const cache = yield* setup(api)
        const weekend = yield* cache.get({ symbol: "AAPL", from: 5, to: 6 }) // Sat, Sun
        assert.strictEqual(weekend.length, 0)
        yield* cache.get({ symbol: "AAPL", from: 5, to: 6 })
        assert.strictEqual(api.calls.length, 1)
        const fortnight = yield* cache.get({ symbol: "AAPL", from: 0, to: 13 })
        assert.deepStrictEqual(api.calls.slice(1).sort((a, b) => a.start - b.start), [
          { symbol: "AAPL", start: 0, end: 4 },
          { symbol: "AAPL", start: 7, end: 13 }
        ])
        assert.strictEqual(fortnight.length, 10)
      })))

    it.effect("an expired interval is refetched (TTL through the Clock)", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api, { ttl: "1 hour" })
        yield* cache.get({ symbol: "AAPL", from: 0, to: 9 })
        yield* TestClock.adjust("30 minutes")
        yield* cache.get({ symbol: "AAPL", from: 0, to: 9 })
        assert.strictEqual(api.calls.length, 1)
        yield* TestClock.adjust("31 minutes")
        yield* cache.get({ symbol: "AAPL", from: 0, to: 9 })
        assert.deepStrictEqual(api.calls[1], { symbol: "AAPL", start: 0, end: 9 })
        assert.strictEqual((yield* cache.stats()).intervals, 1) // the stale entry was replaced
      })))

    it.effect("refetching overlapping rows leaves one row per primary key with the new values", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api, { ttl: "1 hour" })
        yield* cache.get({ symbol: "AAPL", from: 0, to: 9 })
        yield* TestClock.adjust("2 hours")
        api.bump()
        const rows = yield* cache.get({ symbol: "AAPL", from: 5, to: 14 })
        assert.deepStrictEqual(api.calls[1], { symbol: "AAPL", start: 5, end: 14 })
        assert.deepStrictEqual(rows.map((r) => r.close), Array.from({ length: 10 }, (_, i) => 2005 + i))
        const stats = yield* cache.stats()
        assert.strictEqual(stats.rows, 15)
        // refresh forces a refetch even of fresh data, upserting again
        api.bump()
        const refreshed = yield* cache.refresh({ symbol: "AAPL", from: 0, to: 14 })
        assert.strictEqual(refreshed.length, 15)
        assert.deepStrictEqual(refreshed.map((r) => r.close), Array.from({ length: 15 }, (_, i) => 3000 + i))
        assert.strictEqual((yield* cache.stats()).rows, 15)
      })))

    it.effect("a failing fetch returns the typed error and records nothing for that gap", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi({ failIf: (s, e) => s <= 25 && 25 <= e })
        const cache = yield* setup(api, { retry: Schedule.recurs(2), concurrency: 1 })
        yield* cache.get({ symbol: "AAPL", from: 10, to: 12 })
        const error = yield* Effect.flip(cache.get({ symbol: "AAPL", from: 0, to: 30 }))
        assert.strictEqual(error._tag, "ApiError")
        // head gap [0, 9] succeeded and stays recorded; tail gap [13, 30] was tried 1 + 2 retries
        assert.strictEqual(api.calls.filter((c) => c.start === 13).length, 3)
        const missing = yield* cache.missing({ symbol: "AAPL", from: 0, to: 30 })
        assert.deepStrictEqual(missing.map((r) => [dayIndex(r.start), dayIndex(r.end)]), [[13, 30]])
        assert.strictEqual((yield* cache.stats()).rows, 13)
      })))

    it.effect("20 concurrent identical gets fetch once", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        const results = yield* Effect.all(
          Array.from({ length: 20 }, () => cache.get({ symbol: "AAPL", from: 0, to: 59 })),
          {
            concurrency: "unbounded"
          }
        )
        assert.strictEqual(api.calls.length, 1)
        for (const rows of results) assert.strictEqual(rows.length, 60)
      })))

    it.effect("bad input is a typed error and changes nothing", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        const backwards = yield* Effect.flip(cache.get({ symbol: "AAPL", from: 9, to: 3 }))
        assert.strictEqual(backwards._tag, "SqlPullThroughError")
        assert.strictEqual((backwards as SqlPullThrough.SqlPullThroughError).reason, "InvalidQuery")
        assert.match(backwards.message, /after its end/)
        const badFilter = yield* Effect.flip(cache.invalidate({ nope: 1 } as any))
        assert.strictEqual((badFilter as SqlPullThrough.SqlPullThroughError).reason, "InvalidQuery")
        // rows that do not match the schema: typed error, nothing stored or recorded
        const liar = yield* SqlPullThrough.make({
          table: cache.table,
          query,
          fetch: () => Effect.succeed([{ symbol: "AAPL", date: "not a date", close: 1 }] as any),
          retry: Schedule.recurs(0)
        })
        const invalid = yield* Effect.flip(liar.get({ symbol: "AAPL", from: 0, to: 3 }))
        assert.strictEqual((invalid as SqlPullThrough.SqlPullThroughError).reason, "InvalidRows")
        const stats = yield* cache.stats()
        assert.strictEqual(stats.rows, 0)
        assert.strictEqual(stats.intervals, 0)
        assert.strictEqual(api.calls.length, 0)
        const badTable = yield* Effect.flip(SqlPullThrough.make({
          table: SqlPullThrough.table({
            name: "bad name; drop table x",
            columns: Schema.Struct({ n: Schema.Number }),
            primaryKey: ["n"],
            range: { column: "n", step: 1 }
          }),
          query: (n: number) => ({ filters: {}, range: { start: n, end: n } }),
          fetch: () => Effect.succeed([])
        }))
        assert.strictEqual(badTable.reason, "InvalidTable")
      })))

    it.effect("rows outside the gap are stored but do not extend coverage", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi({ extraDays: 3 })
        const cache = yield* setup(api)
        yield* cache.get({ symbol: "AAPL", from: 0, to: 9 })
        assert.strictEqual((yield* cache.stats()).rows, 13)
        const rows = yield* cache.get({ symbol: "AAPL", from: 0, to: 12 })
        assert.deepStrictEqual(api.calls[1], { symbol: "AAPL", start: 10, end: 12 })
        assert.strictEqual(rows.length, 13)
      })))

    it.effect("numeric ranges with float steps and calendar-month steps align requests", () =>
      run(Effect.gen(function*() {
        const seen: Array<[number, number, number]> = []
        const Readings = SqlPullThrough.table({
          name: uniqueName("readings"),
          columns: Schema.Struct({ sensor: Schema.String, at: Schema.Number, value: Schema.Number }),
          primaryKey: ["sensor", "at"],
          range: { column: "at", step: 0.5 }
        })
        const readings = yield* SqlPullThrough.make({
          table: Readings,
          query: (q: { sensor: string; from: number; to: number }) => ({
            filters: { sensor: q.sensor },
            range: { start: q.from, end: q.to }
          }),
          fetch: ({ filters, range }) =>
            Effect.sync(() => {
              seen.push([range.start, range.end, range.endExclusive])
              const out = []
              for (let x = range.start; x < range.endExclusive - 1e-9; x = Number((x + 0.5).toFixed(1))) {
                out.push({ sensor: filters.sensor!, at: x, value: x * 2 })
              }
              return out
            }),
          ttl: null
        })
        const a = yield* readings.get({ sensor: "s1", from: 0.2, to: 2.2 }) // aligned to [0, 2] + one step
        assert.deepStrictEqual(seen, [[0, 2, 2.5]])
        assert.deepStrictEqual(a.map((r) => r.at), [0, 0.5, 1, 1.5, 2])
        yield* readings.get({ sensor: "s1", from: 1, to: 3.4 })
        assert.deepStrictEqual(seen[1], [2.5, 3, 3.5])

        const monthsSeen: Array<[string, string]> = []
        const Monthly = SqlPullThrough.table({
          name: uniqueName("monthly"),
          columns: Schema.Struct({
            region: Schema.String,
            month: Schema.Date,
            sales: Schema.Number,
            final: Schema.Boolean
          }),
          primaryKey: ["region", "month"],
          range: { column: "month", step: "1 month" }
        })
        const monthly = yield* SqlPullThrough.make({
          table: Monthly,
          query: (q: { region: string; from: string; to: string }) => ({
            filters: { region: q.region },
            range: { start: q.from, end: q.to }
          }),
          fetch: ({ filters, range }) =>
            Effect.sync(() => {
              monthsSeen.push([range.start.toISOString().slice(0, 10), range.endExclusive.toISOString().slice(0, 10)])
              const out = []
              for (
                let m = new Date(range.start);
                m < range.endExclusive;
                m = new Date(Date.UTC(m.getUTCFullYear(), m.getUTCMonth() + 1, 1))
              ) {
                out.push({
                  region: filters.region!,
                  month: m,
                  sales: m.getUTCMonth() + 1,
                  final: m.getUTCMonth() % 2 === 0
                })
              }
              return out
            })
        })
        const q1 = yield* monthly.get({ region: "eu", from: "2024-01-15", to: "2024-03-02" })
        assert.deepStrictEqual(monthsSeen, [["2024-01-01", "2024-04-01"]])
        assert.deepStrictEqual(q1.map((r) => [r.sales, r.final]), [[1, true], [2, false], [3, true]])
        yield* monthly.get({ region: "eu", from: "2023-11-30", to: "2024-02-10" })
        assert.deepStrictEqual(monthsSeen[1], ["2023-11-01", "2024-01-01"])
      })))

    it.effect("TTL by age: recent data expires sooner, old data is final", () =>
      run(Effect.gen(function*() {
        yield* TestClock.setTime(day(60).getTime() + 12 * 3_600_000) // noon on day 60
        const api = makeFakeApi()
        const cache = yield* setup(api, {
          ttl: SqlPullThrough.ttlByAge({ recent: "1 hour", tiers: [{ olderThan: "7 days", ttl: null }] })
        })
        yield* cache.get({ symbol: "AAPL", from: 40, to: 60 })
        const stats = yield* cache.stats()
        assert.strictEqual(stats.intervals, 2) // split at the 7-day boundary
        yield* TestClock.adjust("2 hours")
        yield* cache.get({ symbol: "AAPL", from: 40, to: 60 })
        // only days younger than 7 days (ending after day 53 noon) are refetched
        assert.deepStrictEqual(api.calls[1], { symbol: "AAPL", start: 53, end: 60 })
        // a function policy receives the interval and its age
        const ages: Array<number> = []
        const fn = yield* setup(makeFakeApi(), {
          ttl: ({ age }) => {
            ages.push(Duration.toMillis(age))
            return "5 minutes"
          }
        })
        yield* fn.get({ symbol: "X", from: 50, to: 55 })
        assert.deepStrictEqual(ages, [4 * DAY + 14 * 3_600_000])
      })))

    it.effect("getArrow, stats, cleanupExpired and clear", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api, { ttl: "1 hour" })
        const table = yield* cache.getArrow({ symbol: "AAPL", from: 0, to: 9 })
        assert.strictEqual(table.numRows, 10)
        assert.deepStrictEqual(table.schema.fields.map((f) => f.name), ["symbol", "date", "close"])
        assert.strictEqual(table.getChild("close")!.get(3), 1003)
        yield* TestClock.adjust("30 minutes")
        yield* cache.get({ symbol: "MSFT", from: 0, to: 4 })
        let stats = yield* cache.stats()
        assert.deepStrictEqual([stats.rows, stats.intervals, stats.freshIntervals, stats.filterSets], [15, 2, 2, 2])
        assert.strictEqual(stats.lastFetchAt?.getTime(), 30 * 60_000)
        yield* TestClock.adjust("45 minutes") // AAPL expired, MSFT fresh
        assert.strictEqual(yield* cache.cleanupExpired(), 1)
        stats = yield* cache.stats()
        assert.deepStrictEqual([stats.rows, stats.intervals], [5, 1])
        assert.strictEqual(yield* cache.clear(), 5)
        stats = yield* cache.stats()
        assert.deepStrictEqual([stats.rows, stats.intervals], [0, 0])
      })))

    it.effect("invalidate(filters) drops every matching filter set; a custom gap detector is honoured", () =>
      run(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api)
        yield* cache.get({ symbol: "AAPL", from: 0, to: 4 })
        yield* cache.get({ symbol: "MSFT", from: 0, to: 4 })
        assert.strictEqual(yield* cache.invalidate({ symbol: "AAPL" }), 5)
        assert.strictEqual((yield* cache.stats()).filterSets, 1)
        assert.strictEqual(yield* cache.invalidate({}), 5)
        assert.strictEqual((yield* cache.stats()).intervals, 0)
        // a detector that refetches the whole request whenever anything is missing (clipped to it)
        const whole = yield* setup(api, {
          detectGaps: (
            { gaps, requested }
          ) => (gaps.length === 0 ? [] : [{ start: day(dayIndex(requested.start) - 3), end: requested.end }])
        })
        api.calls.length = 0
        yield* whole.get({ symbol: "AAPL", from: 0, to: 4 })
        yield* whole.get({ symbol: "AAPL", from: 2, to: 9 })
        yield* whole.get({ symbol: "AAPL", from: 2, to: 9 })
        assert.deepStrictEqual(api.calls, [{ symbol: "AAPL", start: 0, end: 4 }, { symbol: "AAPL", start: 2, end: 9 }])
      })))

    it.effect("schedule keeps a hot range fresh as a background fiber", () =>
      run(Effect.scoped(Effect.gen(function*() {
        const api = makeFakeApi()
        const cache = yield* setup(api, { ttl: "1 hour" })
        const fiber = yield* cache.schedule({ symbol: "AAPL", from: 0, to: 6 }, Schedule.spaced("1 hour"))
        yield* untilAsleep
        yield* TestClock.adjust("1 minute")
        assert.strictEqual(api.calls.length, 1)
        yield* TestClock.adjust("1 hour")
        yield* untilAsleep
        assert.strictEqual(api.calls.length, 2)
        yield* TestClock.adjust("1 hour")
        yield* untilAsleep
        assert.strictEqual(api.calls.length, 3)
        yield* Fiber.interrupt(fiber)
        const rows = yield* cache.get({ symbol: "AAPL", from: 0, to: 6 })
        assert.strictEqual(rows.length, 7)
        assert.strictEqual(api.calls.length, 3)
      }))))

    it.live("property: fetched intervals never overlap fresh coverage; returned rows lie in the request", () =>
      Effect.gen(function*() {
        const context = yield* Layer.build(makeLayer())
        const op = fc.record({
          kind: fc.constantFrom("get", "get", "get", "invalidate"),
          from: fc.integer({ min: 0, max: 80 }),
          length: fc.integer({ min: 0, max: 25 })
        })
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 6 }), async (ops) => {
              const api = makeFakeApi({ skipWeekends: true })
              const covered = new Set<number>()
              await Effect.runPromise(
                Effect.gen(function*() {
                  const cache = yield* SqlPullThrough.make({
                    table: pricesTable("prop"),
                    query,
                    fetch: api.fetch,
                    ttl: null,
                    retry: Schedule.recurs(0)
                  })
                  for (const o of ops) {
                    const to = o.from + o.length
                    if (o.kind === "invalidate") {
                      yield* cache.invalidate({ symbol: "P" }, { start: day(o.from), end: day(to) })
                      for (let d = o.from; d <= to; d++) covered.delete(d)
                      continue
                    }
                    const before = api.calls.length
                    const rows = yield* cache.get({ symbol: "P", from: o.from, to })
                    const fetched = new Set<number>()
                    for (const c of api.calls.slice(before)) {
                      for (let d = c.start; d <= c.end; d++) {
                        if (covered.has(d)) throw new Error(`day ${d} was fetched again although covered`)
                        if (fetched.has(d)) throw new Error(`day ${d} was fetched twice in one get`)
                        fetched.add(d)
                      }
                    }
                    let weekdays = 0
                    for (let d = o.from; d <= to; d++) {
                      if (!covered.has(d) && !fetched.has(d)) {
                        throw new Error(`day ${d} was neither covered nor fetched`)
                      }
                      if (!isWeekend(day(d))) weekdays++
                      covered.add(d)
                    }
                    for (const r of rows) {
                      const d = dayIndex(r.date)
                      if (d < o.from || d > to) throw new Error(`row of day ${d} outside [${o.from}, ${to}]`)
                    }
                    if (rows.length !== weekdays) throw new Error(`expected ${weekdays} rows, got ${rows.length}`)
                  }
                }).pipe(Effect.provide(context), Effect.provide(quiet))
              )
            }),
            { numRuns: 25 }
          )
        )
      }).pipe(Effect.scoped))

    it.effect("a typed failure leaves the cache usable (Exit is a failure, next get succeeds)", () =>
      run(Effect.gen(function*() {
        let fail = true
        const api = makeFakeApi({ failIf: () => fail })
        const cache = yield* setup(api)
        const exit = yield* Effect.exit(cache.get({ symbol: "AAPL", from: 0, to: 3 }))
        assert.isTrue(Exit.isFailure(exit))
        fail = false
        assert.strictEqual((yield* cache.get({ symbol: "AAPL", from: 0, to: 3 })).length, 4)
      })))
  })
