import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as Prefault from "../src/shared/prefault.js"

const policy = (codec: "lz4" | "none", shuffle: boolean): Blocks.BlockPolicy => ({
  spec: Compression.byName[codec],
  level: undefined,
  shuffle,
  minSize: 256,
  minSavings: 0.03
})

/** Blocks of different kinds: a ramp (compresses), noise (stored raw), a constant. */
const blocky = (length: number, kinds: ReadonlyArray<number>, blockSize: number, seed: number): Uint8Array => {
  const out = new Uint8Array(length)
  let x = seed | 1
  for (let i = 0; i < length; i++) {
    const kind = kinds[Math.floor(i / blockSize) % kinds.length]!
    x = (Math.imul(x, 1103515245) + 12345) | 0
    out[i] = kind === 0 ? (i >>> 3) & 0xff : kind === 1 ? x >>> 24 : 7
  }
  return out
}

const encodeParallel = async (
  src: Uint8Array,
  width: number,
  p: Blocks.BlockPolicy,
  blockSize: number,
  onMain?: number
) => {
  const out = new Blocks.Writer(new Uint8Array(Blocks.bound(src.byteLength, blockSize) + 3), 3)
  const any = await Blocks.writeParallel(out, src, width, p, blockSize, onMain)
  return { bytes: out.bytes.subarray(3, out.offset), any }
}

/** -1 when equal, else the first index that differs (a diff of megabytes would not print). */
const firstDifference = (a: Uint8Array, b: Uint8Array): number => {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength)
  if (Buffer.compare(a, b) === 0) return -1
  let i = 0
  while (a[i] === b[i]) i++
  return i
}

const decodeSync = (stream: Uint8Array, length: number) => {
  const dst = new Uint8Array(length)
  Blocks.read(new Blocks.Reader(stream, 0), dst)
  return dst
}

describe("blocks on the threadpool", () => {
  it("writeParallel's streams decode with read to the same bytes (widths, shuffle, raw and compressed blocks)", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2, 4, 8),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 1, max: 6 }),
        fc.nat(4095),
        fc.integer(),
        // How many blocks stay on this thread: the sampled default, or any split.
        fc.option(fc.integer({ min: 0, max: 7 }), { nil: undefined }),
        async (width, shuffle, kinds, blocks, tail, seed, onMain) => {
          const blockSize = 4096
          const length = Math.floor(((blocks - 1) * blockSize + tail + 1) / width) * width
          const src = blocky(length, kinds, blockSize, seed)
          const copy = src.slice()
          const { any, bytes } = await encodeParallel(src, width, policy("lz4", shuffle), blockSize, onMain)
          assert.deepStrictEqual(decodeSync(bytes, length), copy)
          assert.deepStrictEqual(src, copy, "the input is not changed")
          // The same stream as `write` up to the compressor's choices: same header, same raw length.
          const sync = new Blocks.Writer(new Uint8Array(Blocks.bound(length, blockSize)), 0)
          const syncAny = Blocks.write(sync, src, width, policy("lz4", shuffle), blockSize)
          assert.deepStrictEqual(bytes.subarray(0, 13), sync.bytes.subarray(0, 13))
          if (kinds.every((kind) => kind === 1)) assert.isFalse(any, "noise is stored raw")
          if (kinds.every((kind) => kind !== 1) && length > blockSize) assert.isTrue(any && syncAny)
        }
      ),
      { numRuns: 60 }
    )
  })

  it("a value whose sample compresses far (ascending ids) is written on this thread: write's stream, byte for byte", async () => {
    const blockSize = 1 << 16
    const ids = new Uint8Array(new Int32Array((4 * blockSize) / 4 + 100).map((_, i) => i * 3).buffer)
    const sync = new Blocks.Writer(new Uint8Array(Blocks.bound(ids.byteLength, blockSize)), 0)
    Blocks.write(sync, ids, 4, policy("lz4", true), blockSize)
    const expected = sync.bytes.subarray(0, sync.offset)
    assert.strictEqual(
      firstDifference((await encodeParallel(ids, 4, policy("lz4", true), blockSize)).bytes, expected),
      -1
    )
    // A smooth float64 signal's sample does not: its later blocks go to lz4-napi, stored a little larger.
    const signal = new Uint8Array(
      new Float64Array((4 * blockSize) / 8).map((_, i) => Math.sin(i / 1000) * 100 + ((i * 7919) % 1000) * 1e-6).buffer
    )
    const one = new Blocks.Writer(new Uint8Array(Blocks.bound(signal.byteLength, blockSize)), 0)
    Blocks.write(one, signal, 8, policy("lz4", true), blockSize)
    const parallel = (await encodeParallel(signal, 8, policy("lz4", true), blockSize)).bytes
    assert.notStrictEqual(firstDifference(parallel, one.bytes.subarray(0, one.offset)), -1)
    assert.deepStrictEqual(decodeSync(parallel, signal.byteLength), signal)
  })

  it("a value changed once its put has started is stored as it was when the put began", async () => {
    const codec = CodecDefault.make({})
    const value = new Float64Array((Blocks.BLOCK_SIZE * 2 + 8 * 1000) / 8).map((_, i) => Math.sin(i / 100))
    const before = value.slice()
    const running = Effect.runPromise(codec.encode(value))
    // The put's encode has already copied every block: this write lands after the snapshot.
    value.fill(-1)
    const encoded = await running
    assert.strictEqual(encoded.codec, "lz4")
    const back = await Effect.runPromise(codec.decode(encoded.bytes))
    assert.strictEqual(
      firstDifference(new Uint8Array((back as Float64Array).buffer), new Uint8Array(before.buffer)),
      -1
    )
    assert.isTrue(back instanceof Float64Array && back.buffer instanceof ArrayBuffer)
    assert.strictEqual((back as Float64Array).buffer.byteLength, before.byteLength, "an exact, ordinary buffer")
  })

  it("readAsync with the threadpool faulting the top reads what read does, raw and compressed; corrupt input throws", async () => {
    const length = Prefault.MIN_SIZE + 3 * 4096 + 8
    for (const codec of ["lz4", "none"] as const) {
      const src = blocky(length, [0, 1, 2], 1 << 20, 42)
      const out = new Blocks.Writer(new Uint8Array(Blocks.bound(length, 1 << 20)), 0)
      Blocks.write(out, src, 8, policy(codec, true), 1 << 20)
      const stream = out.bytes.subarray(0, out.offset)
      const dst = new Uint8Array(length)
      const input = new Blocks.Reader(stream, 0)
      const from = Blocks.helpFrom(input, length)
      assert.isBelow(from, length)
      await Blocks.readAsync(input, dst, Prefault.help(dst, from), 64 << 10)
      assert.strictEqual(firstDifference(dst, src), -1, codec)
      // Truncated: the same RangeError `read` throws, after the helper's reads have settled.
      const short = new Uint8Array(length)
      const cut = new Blocks.Reader(stream.subarray(0, stream.byteLength - 100), 0)
      let thrown: unknown
      await Blocks.readAsync(cut, short, Prefault.help(short, Blocks.helpFrom(cut, length)), 64 << 10).catch((e) => {
        thrown = e
      })
      assert.instanceOf(thrown, RangeError)
    }
  })

  it("large arrays through the codec: threadpool encode and decode round-trip bit-exact, and store under plain shuffle + LZ4", async () => {
    const codec = CodecDefault.make({})
    const signal = new Float64Array((Blocks.BLOCK_SIZE * 3 + 4096) / 8)
    for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 1000) * 100 + ((i * 2654435761) % 1000) * 1e-6
    signal[5] = NaN
    signal[6] = -0
    const encoded = await Effect.runPromise(codec.encode(signal))
    const back = (await Effect.runPromise(codec.decode(encoded.bytes))) as Float64Array
    assert.strictEqual(firstDifference(new Uint8Array(back.buffer), new Uint8Array(signal.buffer)), -1)
    // Compare with `write` alone (one thread, TS LZ4), the size the threadpool path must not exceed by much.
    const sync = new Blocks.Writer(new Uint8Array(Blocks.bound(signal.byteLength)), 0)
    Blocks.write(sync, new Uint8Array(signal.buffer), 8, policy("lz4", true))
    assert.isBelow(encoded.bytes.byteLength, sync.offset * 1.05)
  })
})
