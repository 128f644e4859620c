/**
 * Tables and checks shared by the Arrow format tests (arrowSegments, TableGet): issue 21's table,
 * reproducible pseudo-random columns, and a comparison of two tables row by row.
 */
import * as Arrow from "apache-arrow"
import { assert } from "vitest"
import * as Header from "../../src/codec/header.js"

/** Reproducible pseudo-random numbers (a fixture's table must be rebuilt exactly). */
export const random = (seed: number) => () => {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
  return seed / 2 ** 32
}

const names = Array.from({ length: 50 }, (_, i) => `category_${i}`)

/** A dictionary utf8 column of 50 names, over int32 `indices`. */
export const categories = (indices: Int32Array) =>
  Arrow.makeVector(
    Arrow.makeData({
      type: new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int32()),
      length: indices.length,
      data: indices,
      dictionary: Arrow.vectorFromArray(names, new Arrow.Utf8())
    })
  )

/** The table of issue 21's workload: int64 ids, random float64 values, dictionary utf8 of 50. */
export const issueTable = (rows: number) => {
  const next = random(21)
  const indices = new Int32Array(rows).map(() => Math.floor(next() * 50))
  return new Arrow.Table({
    id: Arrow.makeVector(new BigInt64Array(rows).map((_, i) => BigInt(i))),
    value: Arrow.makeVector(new Float64Array(rows).map(() => next() * 1000)),
    category: categories(indices)
  })
}

const rowsOf = (table: Arrow.Table) => JSON.stringify(table.toArray(), (_, v) => typeof v === "bigint" ? `${v}n` : v)

/** The same schema and the same rows. */
export const assertSame = (actual: Arrow.Table, expected: Arrow.Table) => {
  assert.strictEqual(String(actual.schema), String(expected.schema))
  assert.strictEqual(actual.numRows, expected.numRows)
  assert.strictEqual(rowsOf(actual), rowsOf(expected))
}

/** The format version in an encoded value's header. */
export const formatVersion = (bytes: Uint8Array) => {
  const header = Header.parse(bytes, "test")
  if (!("formatVersion" in header)) throw new Error("no header")
  return header.formatVersion
}
