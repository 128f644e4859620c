import { assert, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import { handler } from "../src/codec/formats/arrow.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as Sequence from "../src/codec/sequence.js"
import { CodecError, type CompressionSettings } from "../src/codec/service.js"
import { assertSame, formatVersion, issueTable, random } from "./support/arrowTables.js"

const codec = CodecDefault.make()
const lz4: CompressionSettings = { codec: "lz4", level: undefined, shuffle: true, minSize: 4096, minSavings: 0.1 }

/** The offsets of a container-2 payload's sequence segments (coding 2), with their word width. */
const sequencesOf = (payload: Uint8Array): Array<{ readonly offset: number; readonly width: number }> => {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  assert.strictEqual(payload[0], 2)
  const count = view.getUint32(9, true)
  let at = 13
  const out: Array<{ readonly offset: number; readonly width: number }> = []
  for (let i = 0; i < count; i++) {
    const offset = at
    const coding = payload[at++]!
    if (coding === 2) {
      out.push({ offset, width: payload[at]! })
      at += 9 + 2 * payload[at]!
      continue
    }
    if (coding === 1) at += 2
    const blockSize = view.getUint32(at + 1, true)
    const raw = view.getFloat64(at + 5, true)
    at += 13
    for (let block = 0; block * blockSize < raw; block++) at += 5 + view.getUint32(at + 1, true)
  }
  assert.strictEqual(at, payload.byteLength)
  return out
}

/** An odd row count (the SIMD writer's tail), each column at least a segment of its own (64 KiB). */
const ROWS = 20_003

/** Columns that are arithmetic sequences of every kind, and two that stop being one at the very end. */
const sequenceTable = () => {
  const almost = new BigInt64Array(ROWS).map((_, i) => BigInt(i))
  almost[ROWS - 1] = 0n
  const lastBit = new Int32Array(ROWS).map((_, i) => 5 * i)
  lastBit[ROWS - 1] ^= 1 << 20
  return new Arrow.Table({
    id: Arrow.makeVector(new BigInt64Array(ROWS).map((_, i) => BigInt(i))),
    down: Arrow.makeVector(new BigInt64Array(ROWS).map((_, i) => 1_000_000_000_000n - 7n * BigInt(i))),
    // Carries from the low half into the high one, and wraps past 2^64.
    wraps: Arrow.makeVector(
      new BigUint64Array(ROWS).map((_, i) => BigInt.asUintN(64, 0xffff_ffff_f000_0000n + BigInt(i) * 0x1_2345_6789n))
    ),
    stamp: Arrow.makeVector(new Float64Array(ROWS).fill(0.5)),
    counter: Arrow.makeVector(new Int32Array(ROWS).map((_, i) => 3 - 11 * i)),
    almost: Arrow.makeVector(almost),
    lastBit: Arrow.makeVector(lastBit)
  })
}

describe("arrow format 4: sequence segments", () => {
  it.effect("the issue's int64 ids are stored as a sequence of 8-byte words and read back equal", () =>
    Effect.gen(function*() {
      const table = issueTable(200_000)
      const encoded = yield* codec.encode(table)
      assert.strictEqual(formatVersion(encoded.bytes), 4)
      assertSame((yield* codec.decode(encoded.bytes)) as Arrow.Table, table)
      const payload = (yield* handler.encodeFramed!(table, lz4, 0)).bytes
      assert.deepStrictEqual(sequencesOf(payload).map((s) => s.width), [8])
    }))

  it.effect("every kind of sequence is found, and each column reads back as written, SIMD or not", () =>
    Effect.gen(function*() {
      const table = sequenceTable()
      const payload = (yield* handler.encodeFramed!(table, lz4, 0)).bytes
      // id, down, wraps, stamp (a constant: step 0) as 8-byte words; counter as 4-byte words;
      // almost and lastBit are not sequences.
      assert.deepStrictEqual(sequencesOf(payload).map((s) => s.width), [8, 8, 8, 8, 4])
      for (const simd of [true, false]) {
        Sequence.enable(simd)
        try {
          const back = yield* handler.decode(payload, 4)
          assertSame(back, table)
          for (const name of ["id", "down", "wraps", "counter", "almost", "lastBit"] as const) {
            assert.deepStrictEqual(back.getChild(name)!.toArray(), table.getChild(name)!.toArray(), name)
          }
        } finally {
          Sequence.enable(true)
        }
      }
    }))

  /** `f` with the SIMD kernels, then with the JS loops. */
  const bothPaths = (f: (simd: boolean) => void) => {
    for (const simd of [true, false]) {
      Sequence.enable(simd)
      try {
        f(simd)
      } finally {
        Sequence.enable(true)
      }
    }
  }

  it("detect follows every word: one that breaks the sequence anywhere makes it none, SIMD or not", () => {
    assert.isTrue(Sequence.available, "WebAssembly SIMD is available on every supported Node")
    bothPaths((simd) => {
      const next = random(3)
      // Lengths past several 64 KiB chunks, and odd ones (a word after the last whole vector).
      for (const count of [10_000, 40_001, 9]) {
        for (let trial = 0; trial < 20; trial++) {
          const words = new BigInt64Array(count).map((_, i) => BigInt(i) * 3n)
          const bytes = new Uint8Array(words.buffer)
          assert.deepStrictEqual(Sequence.detect(bytes, () => true), { width: 8, first: 0n, step: 3n })
          const at = Math.floor(next() * bytes.byteLength)
          bytes[at] ^= 1 << Math.floor(next() * 8)
          assert.isUndefined(Sequence.detect(bytes, () => true), `simd ${simd}, ${count} words, byte ${at} flipped`)
        }
      }
      // Steps that wrap (modulo 2^64) and carry between the halves, downwards.
      const start = 2n ** 64n - 5n
      const down = new BigUint64Array(70_001).map((_, i) => BigInt.asUintN(64, start - BigInt(i) * 0x1_0000_0001n))
      assert.deepStrictEqual(Sequence.detect(new Uint8Array(down.buffer), () => true), {
        width: 8,
        first: start,
        step: BigInt.asUintN(64, -0x1_0000_0001n)
      })
      // 4-byte words: an odd count is no 8-byte sequence; wrapping modulo 2^32; one word off at the end.
      const counter = new Uint32Array(50_003).map((_, i) => (0xffff_fff0 + i * 7) >>> 0)
      assert.deepStrictEqual(Sequence.detect(new Uint8Array(counter.buffer), () => true), {
        width: 4,
        first: 0xffff_fff0n,
        step: 7n
      })
      counter[counter.length - 1]! ^= 1
      assert.isUndefined(Sequence.detect(new Uint8Array(counter.buffer), () => true))
      // Not at a multiple of its width in the stream: not a sequence of that width.
      const ids = new Uint8Array(new BigInt64Array(10_000).map((_, i) => BigInt(i)).buffer)
      assert.isUndefined(Sequence.detect(ids, () => false))
    })
  })

  it("orUpTo ORs every word, SIMD or not, and may stop once the limit is reached", () => {
    const next = random(5)
    for (const count of [1, 7, 16_385, 300_001]) {
      const words = new Uint32Array(count).map(() => Math.floor(next() * 200))
      const planted = Math.floor(next() * count)
      const bytes = new Uint8Array(words.buffer)
      const exact4 = words.reduce((or, w) => (or | w) >>> 0, 0)
      const halves = new Uint16Array(words.buffer)
      const exact2 = halves.reduce((or, w) => or | w, 0)
      bothPaths((simd) => {
        assert.strictEqual(Sequence.orUpTo(bytes, 4, 2 ** 32), exact4, `simd ${simd}, ${count} words`)
        assert.strictEqual(Sequence.orUpTo(bytes, 2, 1 << 16), exact2, `simd ${simd}, ${count} words`)
        // One word anywhere with a high bit: the OR (or the part read before stopping) reaches the limit.
        const saved = words[planted]!
        words[planted] = 0x8000_0000
        assert.isAtLeast(Sequence.orUpTo(bytes, 4, 1 << 16), 1 << 16, `simd ${simd}, word ${planted}`)
        assert.isAtLeast(Sequence.orUpTo(bytes, 2, 1 << 8), 1 << 8, `simd ${simd}, word ${planted}`)
        words[planted] = saved
        // An odd number of 2-byte words: the last half-vector is zero-padded, not read past.
        assert.strictEqual(
          Sequence.orUpTo(bytes.subarray(0, bytes.byteLength - 2), 2, 1 << 16),
          halves.subarray(0, halves.length - 1).reduce((or, w) => or | w, 0)
        )
      })
    }
  })

  it.effect("a damaged sequence segment is a typed Corrupt error", () =>
    Effect.gen(function*() {
      const payload = (yield* handler.encodeFramed!(issueTable(100_000), lz4, 0)).bytes
      const at = sequencesOf(payload)[0]!.offset
      const edited = (edit: (bytes: Uint8Array, view: DataView) => void) => {
        const bytes = payload.slice()
        edit(bytes, new DataView(bytes.buffer))
        return bytes
      }
      const damaged = [
        edited((bytes) => (bytes[at + 1] = 2)), // word width
        edited((bytes) => (bytes[at + 1] = 4)), // 4-byte words: the rest of the stream moves
        edited((_, view) => view.setFloat64(at + 2, 100_001, true)), // one word more than the stream holds
        edited((_, view) => view.setFloat64(at + 2, -1, true)),
        edited((_, view) => view.setFloat64(at + 2, 0.5, true)),
        payload.subarray(0, at + 10) // cut inside the first word
      ]
      for (const bytes of damaged) {
        const error = yield* Effect.flip(handler.decode(bytes, 4))
        assert.instanceOf(error, CodecError)
        assert.strictEqual(error.reason, "Corrupt")
      }
    }))
})
