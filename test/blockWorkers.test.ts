/**
 * The block worker (`src/codec/blockWorkers.ts`): `Blocks.readAsync` with half the blocks decoded
 * on a worker thread gives the same bytes, and the same verdict on damaged input, as the
 * single-thread `Blocks.read`; a damaged block the worker finds is a `CodecError` "Corrupt"; a
 * worker that dies leaves its blocks to the caller; a process that never closes its cache exits.
 */
import { afterAll, assert, beforeAll, describe, it } from "@effect/vitest"
import * as Effect from "effect/Effect"
import fc from "fast-check"
import * as fs from "node:fs"
import * as Blocks from "../src/codec/blocks.js"
import * as BlockWorkers from "../src/codec/blockWorkers.js"
import * as Compression from "../src/codec/compression.js"
import * as CodecDefault from "../src/codec/registry.js"
import { runChild } from "./support/child.js"
import { makeTempDir } from "./support/tmp.js"

const policy = (shuffle: boolean): Blocks.BlockPolicy => ({
  spec: Compression.byName.lz4,
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
    out[i] = kind === 0 ? ((i >>> 3) + (x >>> 30)) & 0xff : kind === 1 ? x >>> 24 : 7
  }
  return out
}

const encode = (src: Uint8Array, width: number, shuffle: boolean, blockSize: number): Uint8Array => {
  const out = new Blocks.Writer(new Uint8Array(Blocks.bound(src.byteLength, blockSize)), 0)
  Blocks.write(out, src, width, policy(shuffle), blockSize)
  return out.bytes.subarray(0, out.offset)
}

/**
 * Bytes, or that it threw. Which error may differ when two blocks are damaged (the two paths check
 * blocks in a different order); the codec turns any of them into CodecError "Corrupt".
 */
type Verdict = { readonly bytes: Uint8Array } | { readonly thrown: true }

const single = (stream: Uint8Array, length: number): Verdict => {
  const dst = new Uint8Array(length)
  try {
    Blocks.read(new Blocks.Reader(stream, 0), dst)
    return { bytes: dst }
  } catch (error) {
    assert.instanceOf(error, Error)
    return { thrown: true }
  }
}

const parallel = async (stream: Uint8Array, length: number, at = 0): Promise<Verdict> => {
  // `at`: the result as a view at an odd offset of a larger buffer, against the copies' alignment.
  const dst = new Uint8Array(new ArrayBuffer(length + at), at, length)
  try {
    await Blocks.readAsync(new Blocks.Reader(stream, 0), dst, () => undefined, 1 << 20)
    return { bytes: dst }
  } catch (error) {
    assert.instanceOf(error, Error)
    return { thrown: true }
  }
}

const sameVerdict = (a: Verdict, b: Verdict) => {
  if ("thrown" in a || "thrown" in b) {
    assert.strictEqual("thrown" in b, "thrown" in a, "both throw")
  } else {
    assert.isTrue(Buffer.compare(a.bytes, b.bytes) === 0, "same bytes")
  }
}

const MiB = 1 << 20
/** Shared memory for every decode these tests hand over, faulted in ahead. */
const WARM = 64 * MiB

/** Where block `k`'s LZ4 bytes start in a payload holding the block stream of `rawLength` bytes. */
const blockData = (payload: Uint8Array, rawLength: number, k: number): number => {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength)
  for (let at = 0; at + 13 <= payload.byteLength; at++) {
    if (view.getUint8(at) === 8 && view.getUint32(at + 1, true) === Blocks.BLOCK_SIZE) {
      if (view.getFloat64(at + 5, true) !== rawLength) continue
      let offset = at + 13
      for (let i = 0; i < k; i++) offset += 5 + view.getUint32(offset + 1, true)
      assert.strictEqual(view.getUint8(offset), Compression.byName.lz4.id, "an LZ4 block")
      return offset + 5 + 4
    }
  }
  throw new Error("no block stream")
}

beforeAll(async () => {
  assert.isTrue(await BlockWorkers.warm(WARM), "the worker starts on this machine")
})

describe("block worker", () => {
  it("decodes to the same bytes as the single-thread path (widths, shuffle, raw and compressed blocks)", async () => {
    const before = BlockWorkers.jobs()
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(1, 2, 4, 8),
        fc.boolean(),
        fc.array(fc.integer({ min: 0, max: 2 }), { minLength: 1, maxLength: 5 }),
        fc.constantFrom(256 << 10, 1 * MiB, 3 * MiB),
        fc.integer({ min: 0, max: 2 * MiB }),
        fc.integer(),
        fc.nat(17),
        async (width, shuffle, kinds, blockSize, extra, seed, at) => {
          const length = Math.floor((Blocks.PARALLEL_MIN + extra + 1) / width) * width
          const src = blocky(length, kinds, blockSize, seed)
          const stream = encode(src, width, shuffle, blockSize)
          const out = await parallel(stream, length, at)
          assert.isTrue("bytes" in out && Buffer.compare(out.bytes, src) === 0)
          await BlockWorkers.settled()
        }
      ),
      { numRuns: 25 }
    )
    assert.isAbove(BlockWorkers.jobs() - before, 10, "the worker took blocks")
  }, 120_000)

  it("damaged streams: the same verdict as the single-thread path, wherever the damage is", async () => {
    const length = 6 * MiB + 40
    const blockSize = 1 * MiB
    const src = blocky(length, [0, 0, 2, 0, 1, 0], blockSize, 7)
    const stream = encode(src, 8, true, blockSize)
    const before = BlockWorkers.jobs()
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(stream.byteLength - 1), fc.integer({ min: 1, max: 255 })), {
          minLength: 1,
          maxLength: 3
        }),
        // Damage mostly in the last half: the worker's blocks.
        fc.boolean(),
        async (flips, late) => {
          const damaged = stream.slice()
          for (const [position, xor] of flips) {
            const at = late ? Math.floor(stream.byteLength / 2) + (position >> 1) : position
            damaged[at]! ^= xor
          }
          sameVerdict(single(damaged, length), await parallel(damaged, length))
          // A decode that threw on its own blocks leaves the worker finishing the job: wait for it.
          await BlockWorkers.settled()
        }
      ),
      { numRuns: 60 }
    )
    assert.isAbove(BlockWorkers.jobs() - before, 10, "the worker took blocks")
    // Truncated: RangeError from both.
    sameVerdict(single(stream.subarray(0, stream.byteLength - 100), length), { thrown: true })
    sameVerdict(await parallel(stream.subarray(0, stream.byteLength - 100), length), { thrown: true })
  }, 120_000)

  it("a block the worker finds damaged is a CodecError Corrupt from the codec", async () => {
    const codec = CodecDefault.make({})
    const value = new Float64Array((Blocks.BLOCK_SIZE * 3 + 4096) / 8).map((_, i) => Math.sin(i / 1000))
    const encoded = await Effect.runPromise(codec.encode(value))
    const before = BlockWorkers.jobs()
    const back = (await Effect.runPromise(codec.decode(encoded.bytes))) as Float64Array
    assert.strictEqual(Buffer.compare(new Uint8Array(back.buffer), new Uint8Array(value.buffer)), 0)
    assert.strictEqual(BlockWorkers.jobs() - before, 1, "the last blocks went to the worker")
    await BlockWorkers.settled()
    // Block 2 (the worker's) starts with a match reaching before the start of its output.
    const damaged = encoded.bytes.slice()
    const lz4 = blockData(damaged, value.byteLength, 2)
    damaged.set([0x00, 0x01, 0x00], lz4)
    // Until the worker is the one that finds it (on a loaded machine this thread may get there first).
    const found = BlockWorkers.damaged()
    for (let attempt = 0; attempt < 10 && BlockWorkers.damaged() === found; attempt++) {
      const result = await Effect.runPromise(Effect.either(codec.decode(damaged)))
      await BlockWorkers.settled()
      assert.isTrue(result._tag === "Left", "the damage is found")
      if (result._tag === "Left") {
        assert.strictEqual(result.left._tag, "CodecError")
        assert.strictEqual(result.left.reason, "Corrupt")
      }
    }
    assert.strictEqual(BlockWorkers.damaged() - found, 1, "the worker found the damaged block")
  }, 60_000)

  it("a worker that dies during a decode leaves its blocks to the caller, and a new one starts", async () => {
    const length = 8 * MiB
    const src = blocky(length, [0, 2, 0, 0], 1 * MiB, 3)
    const stream = encode(src, 4, true, 1 * MiB)
    const before = BlockWorkers.jobs()
    // Terminating: the job is posted to a worker that never answers, then its exit rejects the job.
    void BlockWorkers.kill()
    const out = await parallel(stream, length)
    assert.isTrue("bytes" in out && Buffer.compare(out.bytes, src) === 0)
    assert.isTrue(await BlockWorkers.warm(WARM), "a new worker")
    const again = await parallel(stream, length)
    assert.isTrue("bytes" in again && Buffer.compare(again.bytes, src) === 0)
    assert.isAtLeast(BlockWorkers.jobs() - before, 1)
  }, 60_000)

  it(
    "a decode that needs more shared memory runs in-thread while the worker faults it in; the next is handed over",
    async () => {
      await BlockWorkers.kill()
      assert.isTrue(await BlockWorkers.warm(), "a new worker with no memory faulted in")
      const length = 8 * MiB
      const src = blocky(length, [0, 2, 0, 0], 1 * MiB, 9)
      const stream = encode(src, 8, true, 1 * MiB)
      const before = BlockWorkers.jobs()
      const first = await parallel(stream, length)
      assert.isTrue("bytes" in first && Buffer.compare(first.bytes, src) === 0)
      assert.strictEqual(BlockWorkers.jobs(), before, "decoded in-thread")
      assert.isTrue(await BlockWorkers.warm(), "ready once the grown memory is faulted in")
      const second = await parallel(stream, length)
      assert.isTrue("bytes" in second && Buffer.compare(second.bytes, src) === 0)
      assert.strictEqual(BlockWorkers.jobs(), before + 1, "handed over")
      await BlockWorkers.settled()
      assert.isTrue(await BlockWorkers.warm(WARM))
    },
    60_000
  )

  it("with the worker turned off, every block decodes in-thread, to the same bytes", async () => {
    const length = 8 * MiB
    const src = blocky(length, [0], 1 * MiB, 5)
    const stream = encode(src, 8, true, 1 * MiB)
    const before = BlockWorkers.jobs()
    BlockWorkers.enable(false)
    try {
      const out = await parallel(stream, length)
      assert.isTrue("bytes" in out && Buffer.compare(out.bytes, src) === 0)
    } finally {
      BlockWorkers.enable(true)
    }
    assert.strictEqual(BlockWorkers.jobs(), before)
  })
})

describe("a process that never closes its cache", () => {
  const dirs: Array<string> = []
  afterAll(() => {
    for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true })
  })
  it("exits by itself after a get decoded on the worker", { timeout: 60_000 }, async () => {
    const dir = makeTempDir()
    dirs.push(dir)
    const result = await runChild("test/support/blockWorkersExit.ts", [dir])
    assert.strictEqual(result.code, 0, result.stderr)
    const out = JSON.parse(result.stdout)
    assert.deepStrictEqual(out, { warm: true, jobs: 1, same: true })
  })

  it(
    "without SharedArrayBuffer the worker does not start and large gets decode in-thread",
    { timeout: 60_000 },
    async () => {
      const dir = makeTempDir()
      dirs.push(dir)
      const result = await runChild("test/support/blockWorkersExit.ts", [dir, "no-shared-memory"])
      assert.strictEqual(result.code, 0, result.stderr)
      assert.deepStrictEqual(JSON.parse(result.stdout), { warm: false, jobs: 0, same: true })
    }
  )
})
