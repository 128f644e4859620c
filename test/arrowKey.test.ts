// Arrow tables as key parameters, by content (DESIGN.md §3 "Keys"): schema and values decide the
// key; how rows are split into record batches and what null slots hold do not.
import { assert, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import fc from "fast-check"
import * as Cache from "../src/Cache.js"
import { Hasher } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import type { KeyParams } from "../src/schema/CacheKey.js"

const keyOf = (params: KeyParams) =>
  Effect.flatMap(Hasher, (h) => h.key(params)).pipe(Effect.provide(HasherXxhash.layer))
const describeOf = (params: KeyParams) =>
  Effect.flatMap(Hasher, (h) => h.describe(params)).pipe(Effect.provide(HasherXxhash.layer))

const table = () =>
  Arrow.tableFromArrays({
    id: BigInt64Array.from([1n, 2n, 3n, 4n]),
    value: Float64Array.from([0.5, 1.5, 2.5, 3.5]),
    category: ["a", "b", "a", "c"]
  })

/** The same rows in one record batch per row. */
const rebatched = (t: Arrow.Table) =>
  new Arrow.Table(Array.from({ length: t.numRows }, (_, i) => t.slice(i, i + 1).batches).flat())

describe("Arrow tables as key params", () => {
  it.effect("golden vector: the key of a table never drifts", () =>
    Effect.gen(function*() {
      assert.strictEqual(yield* keyOf({ data: table(), step: "features" }), "b2ceea1fa0fe75ed")
    }))

  it.effect("equal content hits whatever the batching; any changed value, name or type misses", () =>
    Effect.gen(function*() {
      const base = yield* keyOf({ data: table() })
      const split = rebatched(table())
      assert.isAbove(split.batches.length, 1)
      assert.strictEqual(yield* keyOf({ data: split }), base)
      assert.strictEqual(yield* keyOf({ data: Arrow.tableFromIPC(Arrow.tableToIPC(table())) }), base)
      const changed = Arrow.tableFromArrays({
        id: BigInt64Array.from([1n, 2n, 3n, 4n]),
        value: Float64Array.from([0.5, 1.5, 2.5, 3.25]),
        category: ["a", "b", "a", "c"]
      })
      assert.notStrictEqual(yield* keyOf({ data: changed }), base)
      const renamed = Arrow.tableFromArrays({
        id: BigInt64Array.from([1n, 2n, 3n, 4n]),
        amount: Float64Array.from([0.5, 1.5, 2.5, 3.5]),
        category: ["a", "b", "a", "c"]
      })
      assert.notStrictEqual(yield* keyOf({ data: renamed }), base)
      const retyped = Arrow.tableFromArrays({
        id: Int32Array.from([1, 2, 3, 4]),
        value: Float64Array.from([0.5, 1.5, 2.5, 3.5]),
        category: ["a", "b", "a", "c"]
      })
      assert.notStrictEqual(yield* keyOf({ data: retyped }), base)
    }))

  it.effect("nulls: what a null slot holds does not matter, where the nulls are does", () =>
    Effect.gen(function*() {
      const withNull = (garbage: number, at: number) => {
        const values = Float64Array.from([1, 2, 3])
        values[at] = garbage
        const validity = new Uint8Array([0b111 & ~(1 << at)])
        const data = Arrow.makeData({
          type: new Arrow.Float64(),
          length: 3,
          nullCount: 1,
          data: values,
          nullBitmap: validity
        })
        return new Arrow.Table({ x: Arrow.makeVector(data) })
      }
      assert.strictEqual(yield* keyOf({ t: withNull(99, 1) }), yield* keyOf({ t: withNull(-7, 1) }))
      assert.notStrictEqual(yield* keyOf({ t: withNull(99, 1) }), yield* keyOf({ t: withNull(99, 2) }))
    }))

  it.effect("property: any rebatching of a random table keeps its key", () =>
    Effect.gen(function*() {
      const samples = fc.sample(
        fc.array(
          fc.record({
            n: fc.option(fc.integer(), { nil: null }),
            s: fc.option(fc.string(), { nil: null }),
            f: fc.double({ noNaN: true })
          }),
          { minLength: 1, maxLength: 40 }
        ),
        { numRuns: 40, seed: 7 }
      )
      for (const rows of samples) {
        const t = Arrow.tableFromJSON(rows)
        assert.strictEqual(yield* keyOf({ t: rebatched(t) }), yield* keyOf({ t }))
      }
    }))

  it.effect("describe summarises a table: columns, rows and a content hash", () =>
    Effect.gen(function*() {
      const described = (yield* describeOf({ data: table() })) as any
      assert.deepStrictEqual(described.data.$arrow, ["id", "value", "category"])
      assert.strictEqual(described.data.rows, 4)
      assert.match(described.data.xxh64, /^[0-9a-f]{16}$/)
    }))

  it.effect("a cache keyed by a table: put, hit with an equal table, invalidateWhere by it", () =>
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.put({ data: table(), step: "mean" }, 2)
      assert.deepStrictEqual(yield* cache.get({ data: rebatched(table()), step: "mean" }), Option.some(2))
      assert.strictEqual(yield* cache.invalidateWhere({ params: { data: table() } }), 1)
      assert.deepStrictEqual(yield* cache.get({ data: table(), step: "mean" }), Option.none())
    }).pipe(Effect.provide(Cache.layerMemory())))
})
