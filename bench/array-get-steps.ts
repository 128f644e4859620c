/**
 * Issue 21's array get, step by step: what each part of reading a 64 MiB array back costs on its
 * own, in one process, beside a raw file read — the floor under the get ratios of
 * `bench/index.ts formats`. Each step is the median of 7, steps interleaved round by round, with
 * a pause before each round (the idle time between two reads, which result buffers use to fault
 * in ahead). Beside wall time, the CPU time of this thread (`/proc/thread-self/schedstat`, Linux),
 * which other processes on a loaded machine disturb much less. The decoder's steps run both with
 * the WebAssembly SIMD kernels (`src/codec/simd.ts`) and with the JS loops.
 *
 * Then the whole get (`Cache.get` on SQLite-free services: memory metadata, file-system blobs),
 * with the checksum computed on the blob's pieces as they are read (the default hasher) against
 * the same hasher without `hashStream` (checksum after the read), interleaved in one process: wall
 * time, this thread's CPU, the other threads' CPU (`process.cpuUsage` minus this thread), and
 * whether the result's prefaulted spare was ready when the get came.
 *
 * `npx tsx bench/array-get-steps.ts` (`--whole` for the second part only)
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BlobStoreFileSystem from "../src/blob/fileSystem.js"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as Lz4 from "../src/codec/lz4.js"
import * as CodecDefault from "../src/codec/registry.js"
import { unshuffle } from "../src/codec/shuffle.js"
import * as Simd from "../src/codec/simd.js"
import { Cache } from "../src/index.js"
import { Hasher, make as makeHasher } from "../src/key/service.js"
import * as Xxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { fmt, readInto, table } from "./support.js"

const MiB = 1 << 20
const SIZE = 64 * MiB
const ROUNDS = 7

const signal = new Float64Array(SIZE / 8)
for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
const raw = new Uint8Array(signal.buffer)

const streamOf = (codec: "lz4" | "none") => {
  const out = new Blocks.Writer(new Uint8Array(Blocks.bound(SIZE)).fill(0), 0)
  Blocks.write(out, raw, 8, {
    spec: Compression.byName[codec],
    level: undefined,
    shuffle: true,
    minSize: 256,
    minSavings: 0.03
  })
  return out.bytes.subarray(0, out.offset)
}
const lz4 = streamOf("lz4")
const none = streamOf("none")

const directory = fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-steps-"))
const rawFile = path.join(directory, "raw")
const lz4File = path.join(directory, "lz4")
fs.writeFileSync(rawFile, raw)
fs.writeFileSync(lz4File, lz4)

// The compressed blocks and a touched scratch block, for the decompression and unshuffle steps alone.
const blocks: Array<Uint8Array> = []
{
  const input = new Blocks.Reader(lz4, 13)
  for (let at = 0; at < SIZE; at += Blocks.BLOCK_SIZE) {
    input.u8()
    blocks.push(input.take(input.u32()).subarray(4))
  }
}
const scratch = new Uint8Array(Blocks.BLOCK_SIZE).fill(0)
const touched = new Uint8Array(SIZE).fill(0)
const pooled = Buffer.allocUnsafeSlow(lz4.byteLength + (none.byteLength - lz4.byteLength)).fill(0)
const hasher = await Effect.runPromise(Xxhash.make())

const steps: ReadonlyArray<readonly [string, () => void]> = [
  ["raw file read (readFileSync: fresh buffer)", () => void fs.readFileSync(rawFile)],
  ["blob read, 45 MiB into a touched (pooled) buffer", () => readInto(lz4File, pooled)],
  ["XXH64 of the 45 MiB stored (checksum on read)", () => void hasher.hashBytes(lz4)],
  ["LZ4 decompress (lz4.ts), 4 blocks into touched scratch", () => blocks.forEach((b) => Lz4.decompress(b, scratch))],
  [
    "LZ4 decompress (wasm), 4 blocks copied into the module + decoded",
    () => blocks.forEach((b) => Simd.decompressToPlanes(b, Blocks.BLOCK_SIZE))
  ],
  ["unshuffle 64 MiB (JS), touched into touched", () => {
    for (let at = 0; at < SIZE; at += Blocks.BLOCK_SIZE) {
      unshuffle(scratch, touched.subarray(at, at + Blocks.BLOCK_SIZE), 8)
    }
  }],
  ["unshuffle 64 MiB (SIMD), module into touched by 128 KiB chunks", () => {
    for (let at = 0; at < SIZE; at += Blocks.BLOCK_SIZE) Simd.unshuffle(touched.subarray(at, at + Blocks.BLOCK_SIZE), 8)
  }],
  ["fault in a fresh 64 MiB buffer (alloc + fill)", () => void new Uint8Array(SIZE).fill(1)],
  ["decode lz4 stream into a fresh buffer (SIMD)", () => Blocks.read(new Blocks.Reader(lz4, 0), new Uint8Array(SIZE))],
  [
    "decode lz4 stream into a prefaulted result (JS)",
    () => {
      Simd.enable(false)
      Blocks.read(new Blocks.Reader(lz4, 0), new Uint8Array(BufferPool.result(SIZE)))
      Simd.enable(true)
    }
  ],
  [
    "decode lz4 stream into a prefaulted result (SIMD)",
    () => Blocks.read(new Blocks.Reader(lz4, 0), new Uint8Array(BufferPool.result(SIZE)))
  ],
  ["decode none stream into a fresh buffer", () => Blocks.read(new Blocks.Reader(none, 0), new Uint8Array(SIZE))],
  [
    "decode none stream into a prefaulted result",
    () => Blocks.read(new Blocks.Reader(none, 0), new Uint8Array(BufferPool.result(SIZE)))
  ],
  ["XXH64 of 64 MiB (none: checksum on read)", () => void hasher.hashBytes(none)]
]

/** This thread's CPU time in ms (Linux), else NaN. */
const threadCpu = (): number => {
  try {
    return Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6
  } catch {
    return NaN
  }
}

const wholeOnly = process.argv.includes("--whole")
const times = steps.map(() => [] as Array<number>)
const cpus = steps.map(() => [] as Array<number>)
BufferPool.result(SIZE)
for (let round = 0; round < (wholeOnly ? 0 : ROUNDS); round++) {
  for (let s = 0; s < steps.length; s++) {
    await new Promise((resolve) => setTimeout(resolve, 150))
    const cpu = threadCpu()
    const start = performance.now()
    steps[s]![1]()
    times[s]!.push(performance.now() - start)
    cpus[s]!.push(threadCpu() - cpu)
  }
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
if (!wholeOnly) {
  table(
    `64 MiB Float64Array get, step by step (medians of ${ROUNDS}, interleaved; load ${
      os.loadavg().map((x) => x.toFixed(2)).join(" ")
    }; ${new Date().toISOString()})`,
    [
      ["step", "ms", "MB/s of 64 MiB", "thread CPU ms", "MB/s of CPU"],
      ...steps.map(([name], s) => [
        name,
        fmt(median(times[s]!)),
        fmt(SIZE / 1e6 / (median(times[s]!) / 1000), 0),
        fmt(median(cpus[s]!)),
        fmt(SIZE / 1e6 / (median(cpus[s]!) / 1000), 0)
      ])
    ]
  )
}

// The whole get, checksum on the pieces as they are read against checksum after the read.
const ramp = new Int32Array(SIZE / 4).map((_, i) => i)
const processCpu = () => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}
/** The default hasher, or the same without `hashStream` (the read then hashes the blob whole). */
const hasherLayer = (streams: boolean) =>
  Layer.effect(
    Hasher,
    Effect.map(Xxhash.make(), (real) => makeHasher({ ...real, hashStream: streams ? real.hashStream : undefined }))
  )
const cacheOf = (streams: boolean, codec: "lz4" | "none") =>
  Effect.runPromise(Effect.scoped(Effect.provide(
    Cache.Cache,
    Cache.layerFromServices().pipe(
      Layer.provide(
        Layer.mergeAll(
          hasherLayer(streams),
          CodecDefault.layer({ compression: { byKind: { array: { codec } } } }),
          MetadataStoreMemory.layer,
          BlobStoreFileSystem.layer({ directory: path.join(directory, `whole-${codec}-${streams}`) })
        )
      )
    )
  )))
const WHOLE_ROUNDS = 9
const wholeRows: Array<Array<string>> = [[
  "64 MiB get",
  "checksum",
  "wall ms",
  "this thread CPU ms",
  "other threads CPU ms",
  "spare ready"
]]
for (const codec of ["lz4", "none"] as const) {
  const caches = [await cacheOf(true, codec), await cacheOf(false, codec)] as const
  for (const [name, value] of [["Float64Array", signal], ["Int32Array", ramp]] as const) {
    const samples = caches.map(() => ({
      wall: [] as Array<number>,
      main: [] as Array<number>,
      other: [] as Array<number>,
      spare: 0
    }))
    for (let round = 0; round < WHOLE_ROUNDS; round++) {
      for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
        const cache = caches[which]!
        await Effect.runPromise(cache.put({ array: name }, value))
        // The pause between two reads, which the next result's prefault uses.
        await new Promise((resolve) => setTimeout(resolve, 150))
        if (BufferPool.sparesReady().includes(SIZE)) samples[which]!.spare++
        const all = processCpu()
        const main = threadCpu()
        const start = performance.now()
        const back = await Effect.runPromise(cache.get({ array: name }))
        const wall = performance.now() - start
        const mainCpu = threadCpu() - main
        if (Option.isNone(back)) throw new Error(`${name}: missed`)
        samples[which]!.wall.push(wall)
        samples[which]!.main.push(mainCpu)
        samples[which]!.other.push(processCpu() - all - mainCpu)
      }
    }
    for (const [which, label] of [[0, "on the pieces, while read"], [1, "after the read"]] as const) {
      const s = samples[which]!
      wholeRows.push([
        `${name}, ${codec}`,
        label,
        fmt(median(s.wall)),
        fmt(median(s.main)),
        fmt(median(s.other)),
        `${s.spare}/${WHOLE_ROUNDS}`
      ])
    }
  }
}
fs.rmSync(directory, { recursive: true, force: true })
table(
  `64 MiB whole get through Cache.get, checksum on the pieces vs after the read (medians of ${WHOLE_ROUNDS}, ` +
    `interleaved; load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}; ${new Date().toISOString()})`,
  wholeRows
)
