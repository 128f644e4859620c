import { assert, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as NdArray from "../src/codec/formats/ndarray.js"
import * as CodecDefault from "../src/codec/registry.js"
import { CodecError, type CompressionSettings } from "../src/codec/service.js"
import * as Simd from "../src/codec/simd.js"
import * as SimdShuffle from "../src/codec/simdShuffle.js"
import type { CacheConfig } from "../src/schema/CacheConfig.js"
import { formatVersion } from "./support/arrowTables.js"
import { tempDir } from "./support/tmp.js"

const codec = CodecDefault.make()
const handler = NdArray.handler
const lz4: CompressionSettings = { codec: "lz4", level: undefined, shuffle: true, minSize: 256, minSavings: 0.03 }
const policy = (planes: boolean): Blocks.BlockPolicy => ({
  spec: Compression.byName.lz4,
  level: undefined,
  shuffle: true,
  minSize: 256,
  minSavings: 0.03,
  planes
})

const PLANES_ID = 128

/** Mulberry32: a seeded generator whose low bits are noise too (a bare LCG's are periodic, and compress). */
const random = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = Math.imul(seed ^ (seed >>> 15), seed | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
}

/** bench/array-sequence.ts's smooth signal, its noise seeded: noisy low planes, smooth high ones. */
const signal = (n: number, seed = 1) => {
  const next = random(seed)
  return new Float64Array(n).map((_, i) => Math.sin(i / 1000) * 100 + next() * 1e-3)
}

/** Values of every element width whose low byte(s) are noise and high bytes are smooth. */
const mixed = (n: number, seed: number) => {
  const next = random(seed)
  return [
    signal(n, seed),
    new Float32Array(n).map((_, i) => Math.sin(i / 1000) * 100 + next() * 1e-2),
    new Int16Array(n).map((_, i) => ((i >> 10) << 8) | Math.floor(next() * 256)),
    new Int32Array(n).map((_, i) => (i << 4) + Math.floor(next() * 65_536)),
    new BigInt64Array(n).map((_, i) => (BigInt(i >> 8) << 40n) + BigInt(Math.floor(next() * 2 ** 32)))
  ] as const
}

const bytesOf = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

interface BlockInfo {
  /** Where its codec id is. */
  readonly offset: number
  readonly id: number
  /** A planes block's plane codings (0 raw, 1 LZ4), with where each plane's header is. */
  readonly planes: ReadonlyArray<{ readonly coding: number; readonly offset: number }>
}

/** The blocks of the block stream at `at`, read independently of the decoder; it must end the bytes. */
const blocksOf = (bytes: Uint8Array, at: number): Array<BlockInfo> => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const width = bytes[at]!
  const blockSize = view.getUint32(at + 1, true)
  const raw = view.getFloat64(at + 5, true)
  at += 13
  const out: Array<BlockInfo> = []
  for (let start = 0; start < raw; start += blockSize) {
    const id = bytes[at]!
    const stored = view.getUint32(at + 1, true)
    const planes: Array<{ coding: number; offset: number }> = []
    if (id === PLANES_ID) {
      let p = at + 5
      for (let k = 0; k < width; k++) {
        planes.push({ coding: bytes[p]!, offset: p })
        p += 5 + view.getUint32(p + 1, true)
      }
      assert.strictEqual(p, at + 5 + stored, "the planes fill the block")
    }
    out.push({ offset: at, id, planes })
    at += 5 + stored
  }
  assert.strictEqual(at, bytes.byteLength)
  return out
}

/** The blocks of a one-array ndarray payload (layout 0, not an nd-array). */
const payloadBlocks = (payload: Uint8Array) => blocksOf(payload, 4)

const encodeStream = async (src: Uint8Array, width: number, planes: boolean, blockSize: number, parallel: boolean) => {
  const out = new Blocks.Writer(new Uint8Array(Blocks.bound(src.byteLength, blockSize)), 0)
  if (parallel) await Blocks.writeParallel(out, src, width, policy(planes), blockSize)
  else Blocks.write(out, src, width, policy(planes), blockSize)
  return out.bytes.slice(0, out.offset)
}

const decodeStream = (stream: Uint8Array, length: number) => {
  const dst = new Uint8Array(length)
  Blocks.read(new Blocks.Reader(stream, 0), dst)
  return dst
}

/** `f` with the SIMD decoder (and shuffle) on, then off. */
const bothWays = <A>(f: (simd: boolean) => A): Array<A> =>
  [true, false].map((simd) => {
    Simd.enable(simd)
    SimdShuffle.enable(simd)
    try {
      return f(simd)
    } finally {
      Simd.enable(true)
      SimdShuffle.enable(true)
    }
  })

const sameBytes = (a: ArrayBufferView, b: ArrayBufferView, what: string) =>
  assert.isTrue(Buffer.compare(bytesOf(a), bytesOf(b)) === 0, what)

/**
 * The value `test/fixtures/ndarray-v1-lz4.bin` holds, written by ndarray format version 1 (755e9cb):
 * a float64 column of two shuffled LZ4 blocks (16 MiB and an odd tail) and a small int16 nd-array.
 */
const v1FixtureValue = () => ({
  steps: new Float64Array(2_100_003).map((_, i) => Math.floor(i / 4096) * 0.25),
  counts: { data: new Int16Array(6000).map((_, i) => (i * 7) % 300), shape: [2, 3000], dtype: "int16" as const }
})

describe("ndarray format 2: shuffled blocks stored plane by plane", () => {
  it.effect("a smooth float64 signal: noisy planes raw, the rest LZ4, smaller than one LZ4 block, bit for bit back", () =>
    Effect.gen(function*() {
      const value = signal(300_000)
      const payload = (yield* handler.encodeFramed!(value, lz4, 0)).bytes
      const [block, ...rest] = payloadBlocks(payload)
      assert.strictEqual(rest.length, 0)
      assert.strictEqual(block!.id, PLANES_ID)
      const codings = block!.planes.map((p) => p.coding)
      // The noise (the low bytes of the mantissa) raw, the sign, exponent and top of it LZ4.
      assert.deepStrictEqual(codings.slice(0, 4), [0, 0, 0, 0])
      assert.deepStrictEqual(codings.slice(6), [1, 1])
      const whole = yield* Effect.promise(() => encodeStream(bytesOf(value), 8, false, Blocks.BLOCK_SIZE, false))
      assert.isBelow(payload.byteLength, whole.byteLength + 4)
      bothWays(() => sameBytes(Effect.runSync(handler.decode(payload, 2)) as Float64Array, value, "read back"))
    }))

  it.effect("every plane compresses (ascending int32): one LZ4 block, as format 1 stored it", () =>
    Effect.gen(function*() {
      const value = new Int32Array(1 << 20).map((_, i) => i)
      const payload = (yield* handler.encodeFramed!(value, lz4, 0)).bytes
      assert.deepStrictEqual(payloadBlocks(payload).map((b) => b.id), [1])
      const whole = yield* Effect.promise(() => encodeStream(bytesOf(value), 4, false, Blocks.BLOCK_SIZE, false))
      sameBytes(payload.subarray(4), whole, "the same stream as without planes")
      sameBytes((yield* handler.decode(payload, 2)) as Int32Array, value, "read back")
    }))

  it.effect("no plane compresses (noise): stored raw", () =>
    Effect.gen(function*() {
      const next = random(9)
      const value = new Uint32Array(200_000).map(() => Math.floor(next() * 2 ** 32))
      const payload = (yield* handler.encodeFramed!(value, lz4, 0)).bytes
      assert.deepStrictEqual(payloadBlocks(payload).map((b) => b.id), [0])
      sameBytes((yield* handler.decode(payload, 2)) as Uint32Array, value, "read back")
    }))

  it("every width, below a block, several blocks and an odd tail, both encoders, SIMD on and off: the same bytes", async () => {
    const blockSize = 64 << 10
    for (const n of [3000, 20_000, 70_001]) {
      for (const value of mixed(n, n)) {
        const width = value.BYTES_PER_ELEMENT
        const src = bytesOf(value)
        const copy = src.slice()
        const streams: Array<Uint8Array> = []
        for (const parallel of [false, true]) {
          for (const simd of [true, false]) {
            SimdShuffle.enable(simd)
            try {
              streams.push(await encodeStream(src, width, true, blockSize, parallel))
            } finally {
              SimdShuffle.enable(true)
            }
          }
        }
        const what = `${value.constructor.name}(${n})`
        sameBytes(src, copy, `${what}: the input is not changed`)
        for (const stream of streams) sameBytes(stream, streams[0]!, `${what}: one stream whichever encoder`)
        const blocks = blocksOf(streams[0]!, 0)
        if (Math.min(blockSize, src.byteLength) / width >= 4096) {
          // Planes of 4 KiB or more: the noisy low byte(s) make every full block a planes block.
          assert.strictEqual(blocks[0]!.id, PLANES_ID, what)
          assert.strictEqual(blocks[0]!.planes[0]!.coding, 0, what)
          assert.strictEqual(blocks[0]!.planes[width - 1]!.coding, 1, what)
        } else {
          assert.notInclude(
            blocks.map((b) => b.id),
            PLANES_ID,
            `${what}: planes below 4 KiB are not worth their headers`
          )
        }
        bothWays((simd) => sameBytes(decodeStream(streams[0]!, src.byteLength), src, `${what}, SIMD ${simd}`))
      }
    }
  })

  it.effect("a value of several 16 MiB blocks through the codec (threadpool encoder, waiting reader)", () =>
    Effect.gen(function*() {
      const value = signal(2_200_003, 5)
      const encoded = yield* codec.encode(value)
      assert.strictEqual(formatVersion(encoded.bytes), 2)
      const payload = (yield* handler.encodeFramed!(value, lz4, 0)).bytes
      assert.deepStrictEqual(payloadBlocks(payload).map((b) => b.id), [PLANES_ID, PLANES_ID])
      // Below what one LZ4 block a 16 MiB block stores (0.702 of raw on the bench's signal).
      assert.isBelow(payload.byteLength, 0.702 * value.byteLength)
      for (const simd of [true, false]) {
        Simd.enable(simd)
        try {
          sameBytes((yield* codec.decode(encoded.bytes)) as Float64Array, value, `SIMD ${simd}`)
        } finally {
          Simd.enable(true)
        }
      }
    }))

  it.effect("bytes written by format version 1 still decode", () =>
    Effect.gen(function*() {
      const bytes = new Uint8Array(fs.readFileSync(path.join(import.meta.dirname, "fixtures", "ndarray-v1-lz4.bin")))
      assert.strictEqual(formatVersion(bytes), 1)
      const back = (yield* codec.decode(bytes)) as ReturnType<typeof v1FixtureValue>
      const expected = v1FixtureValue()
      sameBytes(back.steps, expected.steps, "steps")
      assert.deepStrictEqual(back.counts.shape, expected.counts.shape)
      sameBytes(back.counts.data, expected.counts.data, "counts")
    }))

  it.scoped("a release reading ndarray 1 sees format 2 as newer: a miss and a warning, the entry kept", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const value = signal(100_000)
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        yield* cache.put({ k: "signal" }, value)
        assert.deepStrictEqual((yield* cache.list()).map((e) => e.format), ["ndarray@2"])
      }).pipe(Effect.provide(Cache.layer({ directory, cleanupOnOpen: false })))
      // The older release's handler: the same format id at version 1, taking precedence.
      const older = { ...handler, version: 1 }
      const warnings: Array<string> = []
      const logger = Logger.make(({ logLevel, message }) => {
        if (logLevel._tag === "Warning") warnings.push(String(Array.isArray(message) ? message.join(" ") : message))
      })
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        assert.isTrue(Option.isNone(yield* cache.get({ k: "signal" })))
        assert.strictEqual((yield* cache.list()).length, 1)
      }).pipe(
        Effect.provide(
          Layer.merge(
            Cache.layer({ directory, handlers: [older], cleanupOnOpen: false }),
            Logger.replace(Logger.defaultLogger, logger)
          )
        )
      )
      assert.isTrue(warnings.some((w) => /format version 2 is newer/.test(w)), warnings.join("\n"))
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        sameBytes(Option.getOrThrow(yield* cache.get({ k: "signal" })) as Float64Array, value, "read by format 2")
      }).pipe(Effect.provide(Cache.layer({ directory, cleanupOnOpen: false })))
    }))

  it.scoped("a value with no planes block is written as version 1: a release reading ndarray 1 reads it", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      // No planes block in any: ascending integers compress as one LZ4 block; gzip and none have none;
      // a columns value and a small array; a float64 signal stored with the shuffle off.
      const values: Record<string, { value: unknown; config?: Partial<CacheConfig> }> = {
        ascending: { value: Int32Array.from({ length: 3_000_000 }, (_, i) => i) },
        gzip: { value: signal(200_000), config: { compression: { codec: "gzip" } } },
        none: { value: signal(200_000), config: { compression: { byKind: { array: { codec: "none" } } } } },
        unshuffled: { value: signal(200_000), config: { compression: { shuffle: false } } },
        columns: { value: { a: Int32Array.of(1, 2, 3), b: Float64Array.of(0.5) } }
      }
      for (const [name, { config, value }] of Object.entries(values)) {
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ k: name }, value)
        }).pipe(Effect.provide(Cache.layer({ directory, cleanupOnOpen: false, ...config })))
      }
      const older = { ...handler, version: 1 }
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const listed = yield* cache.list()
        assert.deepStrictEqual(listed.map((e) => e.format), listed.map(() => "ndarray"))
        assert.strictEqual(listed.length, Object.keys(values).length)
        for (const [name, { value }] of Object.entries(values)) {
          const back = yield* cache.get({ k: name })
          assert.isTrue(Option.isSome(back), name)
          assert.deepStrictEqual(back.pipe(Option.getOrThrow), value, name)
        }
      }).pipe(Effect.provide(Cache.layer({ directory, handlers: [older], cleanupOnOpen: false })))
      // And the signal with a planes block is still version 2 beside them.
      const encoded = yield* codec.encode(signal(300_000))
      assert.strictEqual(formatVersion(encoded.bytes), 2)
      assert.strictEqual(encoded.formatVersion, 2)
    }))

  it.effect("a damaged planes block is a typed Corrupt error, SIMD on and off, sync and waiting reader", () =>
    Effect.gen(function*() {
      // 9.6 MB of raw bytes: decoded by the reader that waits for the result's pages (readAsync).
      for (const n of [300_000, 1_200_000]) {
        const payload = (yield* handler.encodeFramed!(signal(n), lz4, 0)).bytes
        const [block] = payloadBlocks(payload)
        assert.strictEqual(block!.id, PLANES_ID)
        const raw = block!.planes.find((p) => p.coding === 0)!.offset
        const packed = block!.planes.find((p) => p.coding === 1)!.offset
        const edited = (edit: (bytes: Uint8Array, view: DataView) => void) => {
          const bytes = payload.slice()
          edit(bytes, new DataView(bytes.buffer))
          return bytes
        }
        const length = (at: number, by: number) => (_: Uint8Array, view: DataView) =>
          view.setUint32(at + 1, view.getUint32(at + 1, true) + by, true)
        const damaged: Array<readonly [string, Uint8Array]> = [
          ["raw plane a byte longer", edited(length(raw, 1))],
          ["raw plane a byte shorter", edited(length(raw, -1))],
          ["LZ4 plane a byte shorter", edited(length(packed, -1))],
          ["LZ4 plane past the block", edited((_, view) => view.setUint32(packed + 1, 1 << 30, true))],
          ["bad LZ4", edited((bytes) => bytes.fill(0xff, packed + 5, packed + 5 + 64))],
          ["unknown plane coding", edited((bytes) => (bytes[raw] = 7))],
          ["block shorter than its planes", edited(length(block!.offset, -1))],
          ["stream of width 4", edited((bytes) => (bytes[4] = 4))],
          ["stream of width 1", edited((bytes) => (bytes[4] = 1))],
          ["truncated inside a plane", payload.subarray(0, packed + 20)]
        ]
        for (const [what, bytes] of damaged) {
          for (const simd of [true, false]) {
            Simd.enable(simd)
            const error = yield* Effect.flip(handler.decode(bytes, 2)).pipe(
              Effect.ensuring(Effect.sync(() => Simd.enable(true)))
            )
            assert.instanceOf(error, CodecError, `${what}, SIMD ${simd}`)
            assert.strictEqual(error.reason, "Corrupt", `${what}, SIMD ${simd}`)
            assert.strictEqual(error.format, "ndarray")
          }
        }
      }
    }))
})
