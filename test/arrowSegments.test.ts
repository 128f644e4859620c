import { assert, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { handler, probeWidth } from "../src/codec/formats/arrow.js"
import * as CodecDefault from "../src/codec/registry.js"
import { CodecError, type CompressionSettings } from "../src/codec/service.js"
import { cacheness } from "../src/index.js"
import { assertSame, formatVersion, issueTable, random } from "./support/arrowTables.js"
import { tempDir } from "./support/tmp.js"

const codec = CodecDefault.make()
const lz4: CompressionSettings = { codec: "lz4", level: undefined, shuffle: true, minSize: 0, minSavings: 0.05 }

/** The table `test/fixtures/arrow-v1-lz4.bin` holds, written by format version 1 (container 0). */
const fixtureTable = () => {
  const rows = 3000
  const names = Array.from({ length: 50 }, (_, i) => `category_${i}`)
  const type = new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int32())
  return new Arrow.Table({
    id: Arrow.makeVector(new BigInt64Array(rows).map((_, i) => BigInt(i * 3))),
    value: Arrow.makeVector(new Float64Array(rows).map((_, i) => Math.sin(i / 10) * 100)),
    category: Arrow.makeVector(Arrow.makeData({
      type,
      length: rows,
      data: new Int32Array(rows).map((_, i) => (i * 7) % 50),
      dictionary: Arrow.vectorFromArray(names, new Arrow.Utf8())
    })),
    label: Arrow.vectorFromArray(
      Array.from({ length: rows }, (_, i) => (i % 11 === 0 ? null : `row ${i}`)),
      new Arrow.Utf8()
    )
  })
}

describe("arrow format, segments (containers 1 and 2)", () => {
  it.effect("bytes written by format version 1 (one shuffled block stream) still decode", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "fixtures", "arrow-v1-lz4.bin")))
      assert.strictEqual(formatVersion(bytes), 1)
      assertSame((yield* codec.decode(bytes)) as Arrow.Table, fixtureTable())
    }))

  it.effect("the issue's table is stored in segments, each column coded as pays, and reads back equal", () =>
    Effect.gen(function*() {
      const table = issueTable(200_000)
      const encoded = yield* codec.encode(table)
      assert.strictEqual(formatVersion(encoded.bytes), 4)
      assert.strictEqual(encoded.codec, "lz4")
      assertSame((yield* codec.decode(encoded.bytes)) as Arrow.Table, table)
      const payload = yield* handler.encodeFramed!(table, lz4, 0)
      assert.strictEqual(payload.bytes[0], 2)
      // ids shrink to almost nothing, indices to about a quarter, random values stay raw.
      const logical = 20 * 200_000
      assert.isBelow(payload.bytes.byteLength, 0.55 * logical)
      assert.isAbove(payload.bytes.byteLength, 0.35 * logical)
      assertSame(yield* handler.decode(payload.bytes, 2), table)
    }))

  it("a probe picks the shuffle width that pays, plain LZ4, or raw", () => {
    const ids = new Uint8Array(new BigInt64Array(100_000).map((_, i) => BigInt(i)).buffer)
    assert.strictEqual(probeWidth(ids, true, 0.05), 8)
    assert.strictEqual(probeWidth(ids, false, 0.05), 1)
    const next = random(7)
    const noise = new Uint8Array(800_000).map(() => Math.floor(next() * 256))
    assert.strictEqual(probeWidth(noise, true, 0.05), 0)
    // Text compresses plain; shuffling it saves nothing more.
    const text = new TextEncoder().encode(Array.from({ length: 20_000 }, (_, i) => `line ${i % 97} of text`).join("\n"))
    assert.strictEqual(probeWidth(text, true, 0.05), 1)
  })

  it.effect("small, empty and sliced tables round-trip in segments", () =>
    Effect.gen(function*() {
      const sliced = issueTable(50_000).slice(1234, 40_000)
      const tables = [
        issueTable(0),
        issueTable(1),
        sliced,
        Arrow.tableFromArrays({ x: new Float32Array(70_000).map((_, i) => i / 3), y: new Int16Array(70_000) })
      ]
      for (const table of tables) {
        const payload = yield* handler.encodeFramed!(table, lz4, 0)
        assert.strictEqual(payload.bytes[0], 2)
        assertSame(yield* handler.decode(payload.bytes, 3), table)
      }
    }))

  it.effect("other codecs keep the single block stream (container 0)", () =>
    Effect.gen(function*() {
      const table = issueTable(20_000)
      const payload = yield* handler.encodeFramed!(table, { ...lz4, codec: "gzip", level: 1 }, 0)
      assert.strictEqual(payload.bytes[0], 0)
      assertSame(yield* handler.decode(payload.bytes, 2), table)
    }))

  it.effect("a damaged segmented payload is a typed Corrupt error, not a crash", () =>
    Effect.gen(function*() {
      const table = issueTable(100_000)
      const payload = (yield* handler.encodeFramed!(table, lz4, 0)).bytes.slice()
      const edited = (edit: (bytes: Uint8Array) => void) => {
        const bytes = payload.slice()
        edit(bytes)
        return bytes
      }
      const longer = new Uint8Array(payload.byteLength + 1)
      longer.set(payload)
      const damaged = [
        payload.subarray(0, payload.byteLength - 100),
        // the segment count
        edited((bytes) => bytes.fill(0, 9, 13)),
        // the stream length
        edited((bytes) => new DataView(bytes.buffer).setFloat64(1, 123, true)),
        longer,
        edited((bytes) => (bytes[0] = 7))
      ]
      for (const bytes of damaged) {
        const error = yield* Effect.flip(handler.decode(bytes, 2))
        assert.instanceOf(error, CodecError)
        assert.strictEqual(error.reason, "Corrupt")
      }
    }))

  it.scoped("a 1M-row table puts and gets through the Promise API (issue 21's defect)", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const cache = cacheness({ directory, maxSize: null, cleanupOnOpen: false })
      const table = issueTable(1_000_000)
      const back = yield* Effect.promise(async () => {
        await cache.put({ peer: "table" }, table)
        await cache.put({ peer: "table" }, table)
        const got = await cache.get({ peer: "table" })
        await cache.close()
        return got as Arrow.Table
      })
      assert.strictEqual(back.numRows, 1_000_000)
      assert.deepStrictEqual(back.getChild("id")!.toArray(), table.getChild("id")!.toArray())
      assert.deepStrictEqual(back.getChild("value")!.toArray(), table.getChild("value")!.toArray())
      assert.strictEqual(back.getChild("category")!.get(999_999), table.getChild("category")!.get(999_999))
    }), { timeout: 60_000 })
})
