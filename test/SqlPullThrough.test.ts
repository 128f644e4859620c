import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Schedule from "effect/Schedule"
import * as Schema from "effect/Schema"
import * as fc from "fast-check"
import * as fs from "node:fs"
import * as path from "node:path"
import { pullThrough } from "../src/pullthrough/promise.js"
import * as Ranges from "../src/pullthrough/ranges.js"
import * as SqlPullThrough from "../src/SqlPullThrough.js"
import { sqlPullThroughSuite } from "./suites/SqlPullThroughSuite.js"
import { pgDescribe, pgSchema, pgUrl } from "./support/postgres.js"
import { makeTempDir } from "./support/tmp.js"

sqlPullThroughSuite("duckdb", () => SqlPullThrough.layerDuckDB())

sqlPullThroughSuite("sqlite", () =>
  Layer.unwrapScoped(Effect.gen(function*() {
    const dir = yield* Effect.acquireRelease(Effect.sync(makeTempDir), (d) =>
      Effect.sync(() => fs.rmSync(d, { recursive: true, force: true })))
    return SqlPullThrough.layerSqlite({ filename: path.join(dir, "pull.db") })
  })))

pgDescribe("SqlPullThrough on PostgreSQL", () => {
  const schema = pgSchema("pull")
  sqlPullThroughSuite("postgres", () => SqlPullThrough.layerPg({ url: pgUrl, schema }))
})

describe("ranges", () => {
  const interval = fc.tuple(fc.integer({ min: -50, max: 50 }), fc.integer({ min: 0, max: 30 })).map(([lo, n]) => ({
    lo,
    hi: lo + n
  }))

  it("subtract: gaps are disjoint from coverage and gaps ∪ coverage ⊇ request", () =>
    fc.assert(fc.property(interval, fc.array(interval, { maxLength: 8 }), (requested, covered) => {
      const gaps = Ranges.subtract(requested, covered)
      const inCovered = (x: number) => covered.some((c) => c.lo <= x && x <= c.hi)
      const inGaps = (x: number) => gaps.some((g) => g.lo <= x && x <= g.hi)
      for (let x = requested.lo; x <= requested.hi; x++) assert.strictEqual(inGaps(x), !inCovered(x))
      for (const g of gaps) assert.isTrue(g.lo >= requested.lo && g.hi <= requested.hi)
      for (let i = 1; i < gaps.length; i++) assert.isTrue(gaps[i]!.lo > gaps[i - 1]!.hi + 1)
    })))

  it("mergeNearby joins gaps within the tolerance", () => {
    assert.deepStrictEqual(Ranges.mergeNearby([{ lo: 0, hi: 2 }, { lo: 5, hi: 6 }, { lo: 10, hi: 10 }], 2), [{
      lo: 0,
      hi: 6
    }, { lo: 10, hi: 10 }])
    assert.deepStrictEqual(Ranges.mergeNearby([{ lo: 0, hi: 2 }, { lo: 4, hi: 6 }], 0), [{ lo: 0, hi: 2 }, {
      lo: 4,
      hi: 6
    }])
  })

  it("grids: days, weeks from Monday, calendar months, float steps", () => {
    const day = Ranges.makeGrid("date", "1 day")!
    assert.strictEqual(Ranges.valueOf(day, Ranges.indexOf(day, Date.UTC(2024, 1, 29, 13))), Date.UTC(2024, 1, 29))
    const week = Ranges.makeGrid("date", "1 week")!
    assert.strictEqual(new Date(Ranges.valueOf(week, Ranges.indexOf(week, Date.UTC(2024, 0, 4)))).getUTCDay(), 1)
    const quarter = Ranges.makeGrid("date", { months: 3 })!
    assert.strictEqual(Ranges.valueOf(quarter, Ranges.indexOf(quarter, Date.UTC(2024, 4, 17))), Date.UTC(2024, 3, 1))
    const month = Ranges.makeGrid("date", "1 month")!
    assert.strictEqual(Ranges.valueOf(month, Ranges.indexOf(month, Date.UTC(2024, 1, 29)) + 1), Date.UTC(2024, 2, 1))
    const tenth = Ranges.makeGrid("number", 0.1)!
    assert.strictEqual(Ranges.indexOf(tenth, 0.3), 3)
    assert.strictEqual(Ranges.valueOf(tenth, 3), 0.3)
    assert.isUndefined(Ranges.makeGrid("number", "1 day"))
    assert.isUndefined(Ranges.makeGrid("date", -5))
  })

  it("ttlByAge picks the oldest tier reached", () => {
    const policy = Ranges.ttlByAge({
      recent: "1 hour",
      tiers: [{ olderThan: "1 day", ttl: "1 week" }, { olderThan: "30 days", ttl: null }]
    })
    assert.strictEqual(Ranges.ttlForAge(policy, 0), 3_600_000)
    assert.strictEqual(Ranges.ttlForAge(policy, 2 * 86_400_000), 7 * 86_400_000)
    assert.strictEqual(Ranges.ttlForAge(policy, 31 * 86_400_000), null)
  })
})

describe("pullThrough (Promise twin)", () => {
  const Prices = () =>
    SqlPullThrough.table({
      name: `promise_${process.pid}_${Math.random().toString(36).slice(2, 8)}`,
      columns: Schema.Struct({ symbol: Schema.String, date: Schema.Date, close: Schema.Number }),
      primaryKey: ["symbol", "date"],
      range: { column: "date", step: "1 day" }
    })
  const make = (config: { readonly backend?: "duckdb" | "sqlite" | "postgres"; readonly filename?: string } = {}) => {
    const calls: Array<[string, string]> = []
    const client = pullThrough({
      table: Prices(),
      query: (q: { symbol: string; start: string; end: string }) => ({
        filters: { symbol: q.symbol },
        range: { start: q.start, end: q.end }
      }),
      fetch: async ({ filters, range }) => {
        calls.push([range.start.toISOString().slice(0, 10), range.end.toISOString().slice(0, 10)])
        await new Promise((r) => setTimeout(r, 1))
        if (filters.symbol === "FAIL") throw new Error("upstream down")
        const rows = []
        for (let t = range.start.getTime(); t <= range.end.getTime(); t += 86_400_000) {
          rows.push({ symbol: filters.symbol!, date: new Date(t), close: 1 })
        }
        return rows
      },
      ttl: "1 day",
      retry: Schedule.recurs(0),
      ...config
    })
    return { client, calls }
  }

  it("fetches missing ranges once and answers repeats locally (duckdb, sqlite)", async () => {
    const dir = makeTempDir()
    try {
      for (
        const config of [{ backend: "duckdb" as const }, {
          backend: "sqlite" as const,
          filename: path.join(dir, "p.db")
        }]
      ) {
        const { client, calls } = make(config)
        assert.strictEqual((await client.get({ symbol: "AAPL", start: "2024-01-01", end: "2024-01-10" })).length, 10)
        assert.strictEqual((await client.get({ symbol: "AAPL", start: "2024-01-01", end: "2024-01-12" })).length, 12)
        assert.deepStrictEqual(calls, [["2024-01-01", "2024-01-10"], ["2024-01-11", "2024-01-12"]])
        assert.strictEqual(
          (await client.getArrow({ symbol: "AAPL", start: "2024-01-01", end: "2024-01-03" })).numRows,
          3
        )
        assert.strictEqual(await client.invalidate({ symbol: "AAPL" }), 12)
        assert.strictEqual((await client.stats()).rows, 0)
        await client.close()
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  })

  it("rejects with SqlPullThroughError: a failed fetch, bad input, bad config", async () => {
    const { client } = make()
    const failed = await client.get({ symbol: "FAIL", start: "2024-01-01", end: "2024-01-02" }).catch((e) => e)
    assert.strictEqual(failed._tag, "SqlPullThroughError")
    assert.strictEqual(failed.reason, "FetchFailed")
    assert.match(failed.message, /upstream down/)
    const bad = await client.get({ symbol: "AAPL", start: "not a date", end: "2024-01-02" }).catch((e) => e)
    assert.strictEqual(bad.reason, "InvalidQuery")
    await client.close()
    assert.throws(() => make({ backend: "sqlite" }), /needs a filename/)
  })
})
