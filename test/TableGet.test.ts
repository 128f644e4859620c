import { assert, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import { handler } from "../src/codec/formats/arrow.js"
import * as CodecDefault from "../src/codec/registry.js"
import { CodecError, type CompressionSettings } from "../src/codec/service.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { assertSame, categories, formatVersion, issueTable, random } from "./support/arrowTables.js"

const codec = CodecDefault.make()
const lz4: CompressionSettings = { codec: "lz4", level: undefined, shuffle: true, minSize: 4096, minSavings: 0.1 }

/**
 * The table `test/fixtures/arrow-v2-lz4.bin` holds, written by format version 2 (container 1), and
 * `arrow-v3-lz4.bin`, written by format version 3 (container 2 with narrowed segments, 2467d7c).
 */
const v2FixtureTable = () => {
  const rows = 17_000
  return new Arrow.Table({
    id: Arrow.makeVector(new BigInt64Array(rows).map((_, i) => BigInt(i * 3))),
    value: Arrow.makeVector(new Float64Array(rows).map((_, i) => (i % 1000) / 4)),
    category: categories(new Int32Array(rows).map((_, i) => (i * 7) % 50)),
    count: Arrow.makeVector(new Int32Array(rows).map((_, i) => (i * 13) % 60_000))
  })
}

/** Columns of every narrowing (and two that cannot be), random so that nothing else shrinks them. */
const narrowTable = (rows: number) => {
  const next = random(5)
  return new Arrow.Table({
    byte: categories(new Int32Array(rows).map(() => Math.floor(next() * 50))),
    top: Arrow.makeVector(new Int32Array(rows).map((_, i) => (i % 7 === 0 ? 255 : Math.floor(next() * 256)))),
    two: Arrow.makeVector(new Uint32Array(rows).map((_, i) => (i % 5 === 0 ? 65_535 : Math.floor(next() * 65_536)))),
    short: Arrow.makeVector(new Int16Array(rows).map(() => Math.floor(next() * 256))),
    // Narrowed, then compressed: read through the block decoder rather than in place.
    periodic: Arrow.makeVector(new Int32Array(rows).map((_, i) => (i * 7) % 50)),
    negative: Arrow.makeVector(new Int32Array(rows).map(() => Math.floor(next() * 200) - 100)),
    wide: Arrow.makeVector(new Int32Array(rows).map(() => Math.floor(next() * 2 ** 31)))
  })
}

interface SegmentInfo {
  /** Where the segment's coding byte is. */
  readonly offset: number
  readonly narrowed: { readonly word: number; readonly keep: number } | undefined
  /** Its length in the stream. */
  readonly length: number
}

/** The segments of a container-2 payload, read independently of the decoder. */
const segmentsOf = (payload: Uint8Array): Array<SegmentInfo> => {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  assert.strictEqual(payload[0], 2)
  const count = view.getUint32(9, true)
  let at = 13
  const out: Array<SegmentInfo> = []
  for (let i = 0; i < count; i++) {
    const offset = at
    const coding = payload[at++]!
    if (coding === 2) {
      // A sequence (format version 4): u8 word width · f64 word count · first word · step.
      const width = payload[at]!
      out.push({ offset, narrowed: undefined, length: view.getFloat64(at + 1, true) * width })
      at += 9 + 2 * width
      continue
    }
    let narrowed: SegmentInfo["narrowed"]
    if (coding === 1) {
      narrowed = { word: payload[at]!, keep: payload[at + 1]! }
      at += 2
    }
    const blockSize = view.getUint32(at + 1, true)
    const raw = view.getFloat64(at + 5, true)
    at += 13
    for (let block = 0; block * blockSize < raw; block++) at += 5 + view.getUint32(at + 1, true)
    out.push({ offset, narrowed, length: narrowed === undefined ? raw : raw / narrowed.keep * narrowed.word })
  }
  assert.strictEqual(at, payload.byteLength)
  return out
}

describe("table get: narrowed segments (container 2)", () => {
  it.effect("bytes written by format version 2 (container 1) still decode", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "fixtures", "arrow-v2-lz4.bin")))
      assert.strictEqual(formatVersion(bytes), 2)
      assertSame((yield* codec.decode(bytes)) as Arrow.Table, v2FixtureTable())
    }))

  it.effect("bytes written by format version 3 (container 2, no sequences) still decode", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "fixtures", "arrow-v3-lz4.bin")))
      assert.strictEqual(formatVersion(bytes), 3)
      assertSame((yield* codec.decode(bytes)) as Arrow.Table, v2FixtureTable())
    }))

  it.effect("the issue's dictionary indices are stored narrowed to a byte, and read back equal", () =>
    Effect.gen(function*() {
      const table = issueTable(200_000)
      const encoded = yield* codec.encode(table)
      assert.strictEqual(formatVersion(encoded.bytes), 4)
      assertSame((yield* codec.decode(encoded.bytes)) as Arrow.Table, table)
      const payload = (yield* handler.encodeFramed!(table, lz4, 0)).bytes
      const narrowed = segmentsOf(payload).filter((segment) => segment.narrowed !== undefined)
      // The indices only: the int64 ids exceed two bytes, the float64 values are random.
      assert.deepStrictEqual(narrowed.map((segment) => [segment.narrowed, segment.length]), [
        [{ word: 4, keep: 1 }, 4 * 200_000]
      ])
      // Stored as one byte per index (they are random: nothing else shrinks them).
      const logical = 20 * 200_000
      assert.isBelow(payload.byteLength, 0.46 * logical)
    }))

  it.effect("every column that fits is narrowed in its own segment, and each reads back as written", () =>
    Effect.gen(function*() {
      const table = narrowTable(40_000)
      const payload = (yield* handler.encodeFramed!(table, lz4, 0)).bytes
      const narrowed = segmentsOf(payload).flatMap((segment) =>
        segment.narrowed === undefined ? [] : [`${segment.narrowed.word}/${segment.narrowed.keep}`]
      )
      assert.deepStrictEqual(narrowed, ["4/1", "4/1", "4/2", "2/1", "4/1"])
      const periodic = segmentsOf(payload).filter((segment) => segment.narrowed !== undefined)[4]!
      assert.notStrictEqual(payload[periodic.offset + 3 + 13], 0, "the periodic column's block is compressed")
      assertSame(yield* handler.decode(payload, 3), table)
      assertSame(handler.decodeSync!(payload, 3), table)
    }))

  it.effect(
    "a large table decodes into fresh memory as into a spare, and equals the put",
    () =>
      Effect.gen(function*() {
        const table = issueTable(1_000_000)
        const payload = new Uint8Array((yield* handler.encodeFramed!(table, lz4, 0)).bytes)
        const length = new DataView(payload.buffer).getFloat64(1, true)
        assert.isAbove(length, 8 << 20)
        for (let round = 0; round < 2; round++) {
          // Takes the spare a read of this size may have left, so the decode gets fresh memory.
          BufferPool.result(length)
          const back = yield* handler.decode(payload, 3)
          assert.strictEqual(back.numRows, 1_000_000)
          assert.deepStrictEqual(back.getChild("id")!.toArray(), table.getChild("id")!.toArray())
          assert.deepStrictEqual(back.getChild("value")!.toArray(), table.getChild("value")!.toArray())
          assert.deepStrictEqual(
            back.getChild("category")!.data[0]!.values,
            table.getChild("category")!.data[0]!.values
          )
          assert.strictEqual(back.getChild("category")!.get(999_999), table.getChild("category")!.get(999_999))
        }
      }),
    { timeout: 60_000 }
  )

  it.effect(
    "a damaged narrowed segment is a typed Corrupt error, in small and large payloads",
    () =>
      Effect.gen(function*() {
        const small = (yield* handler.encodeFramed!(narrowTable(40_000), lz4, 0)).bytes
        const large = new Uint8Array((yield* handler.encodeFramed!(issueTable(1_000_000), lz4, 0)).bytes)
        for (const payload of [small, large]) {
          const at = segmentsOf(payload).find((segment) => segment.narrowed !== undefined)!.offset
          const edited = (edit: (bytes: Uint8Array) => void) => {
            const bytes = payload.slice()
            edit(bytes)
            return bytes
          }
          const damaged = [
            edited((bytes) => (bytes[at] = 9)), // unknown coding
            edited((bytes) => (bytes[at + 1] = 8)), // word width
            edited((bytes) => (bytes[at + 2] = 4)), // kept as wide as the word
            edited((bytes) => (bytes[at + 2] = 2)), // two bytes kept where one was: the words no longer fill the stream
            // the narrowed length: one byte more than stored
            edited((bytes) => {
              const view = new DataView(bytes.buffer)
              view.setFloat64(at + 3 + 5, view.getFloat64(at + 3 + 5, true) + 1, true)
            })
          ]
          for (const bytes of damaged) {
            const error = yield* Effect.flip(handler.decode(bytes, 3))
            assert.instanceOf(error, CodecError)
            assert.strictEqual(error.reason, "Corrupt")
          }
        }
      }),
    { timeout: 60_000 }
  )
})
