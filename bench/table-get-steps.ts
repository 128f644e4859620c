/**
 * Issue 21's table get, step by step: what each part of reading the 1M-row table back costs on its
 * own (int64 id, float64 value, dictionary utf8 of 50 values — bench/formats.ts's table), in one
 * process, beside the whole get through the Promise API and python-diskcache's get of the same
 * pandas DataFrame (pickled; `bench/peer/diskcache_bench.py table`). The read, the checksum and
 * the decode are what every get pays: their sum is the floor under the table's get ratio. Each
 * step is the median of 15, steps interleaved round by round, a short pause before each; wall
 * time and the process's CPU time (all threads: the blob read runs on libuv's pool, the marker
 * of the garbage collector on its own threads).
 *
 * The whole get is timed apart, gets in a row as a user makes them: each returns 20 MB of fresh
 * memory, and V8 answers every 64 MB of it with a full mark of the heap, so interleaved with the
 * steps (which allocate as much again) it would pay for their collections too. Its garbage
 * collection is shown three ways: the gc entries V8 reports (the pauses), the full collections
 * per get, and the same gets with a full collection forced between them, outside the timing —
 * the difference is what the collections cost the get, incremental marking on this thread and
 * the background marker's share of two cores included, which the gc entries leave out.
 *
 * `npx tsx bench/table-get-steps.ts`
 */
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { constants, PerformanceObserver } from "node:perf_hooks"
import * as v8 from "node:v8"
import * as vm from "node:vm"
import * as Blocks from "../src/codec/blocks.js"
import { handler } from "../src/codec/formats/arrow.js"
import * as Sequence from "../src/codec/sequence.js"
import type { CompressionSettings } from "../src/codec/service.js"
import { cacheness } from "../src/index.js"
import * as Xxhash from "../src/key/xxhash.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { arrowTable, benchDir, diskcachePeer, fmt, readInto, table } from "./support.js"

const ROWS = 1_000_000
const ROUNDS = 15

// A full collection on demand, for the gets that owe none (and the heap after the imports).
v8.setFlagsFromString("--expose-gc")
const collect = vm.runInNewContext("gc") as () => void
collect()
const heapAfterImports = process.memoryUsage().heapUsed

/**
 * The process's CPU time in ms, all threads (getrusage: exact, where this thread's
 * `/proc/thread-self/schedstat` lags by up to a scheduler tick, longer than most steps here).
 */
const processCpu = (): number => {
  const { system, user } = process.cpuUsage()
  return (user + system) / 1000
}

const { table: arrow } = arrowTable(ROWS)

// The payload as the default settings store it (what `Cache.put` writes after its header).
const defaults: CompressionSettings = { codec: "lz4", level: undefined, shuffle: true, minSize: 4096, minSavings: 0.1 }
const framed = Effect.runSync(handler.encodeFramed!(arrow, defaults, 0))
const payload = new Uint8Array(framed.bytes)
const ipc = Arrow.tableToIPC(arrow)

const directory = benchDir("table-steps")
const payloadFile = path.join(directory, "payload")
const ipcFile = path.join(directory, "ipc")
fs.writeFileSync(payloadFile, payload)
fs.writeFileSync(ipcFile, ipc)
const pooled = Buffer.allocUnsafeSlow(payload.byteLength).fill(0)
const touched = new Uint8Array(ipc.byteLength).fill(0)
const hasher = await Effect.runPromise(Xxhash.make())
const cache = cacheness({ directory: path.join(directory, "cache"), maxSize: null, cleanupOnOpen: false })
await cache.put({ table: 1 }, arrow)

/**
 * The payload's segments decoded one by one into a touched IPC buffer, timed each (container 2:
 * a narrowed segment is read into the upper part of its words, then widened; the handler skips
 * that copy when the low bytes are one raw block, so this row is a little pessimistic).
 */
const segmentTimes = new Map<string, Array<number>>()
const decodeSegments = () => {
  const input = new Blocks.Reader(payload, 0)
  const container = input.u8()
  const length = input.f64()
  const into = touched.subarray(0, length)
  const segments = input.u32()
  let at = 0
  for (let i = 0; i < segments; i++) {
    const coding = container === 2 ? input.u8() : 0
    if (coding === 2) {
      // An arithmetic sequence (format 4): word width, count, first word and step.
      const width = input.u8() as 4 | 8
      const count = input.f64()
      const words = input.take(2 * width)
      const view = new DataView(words.buffer, words.byteOffset, words.byteLength)
      const first = width === 8 ? view.getBigUint64(0, true) : BigInt(view.getUint32(0, true))
      const step = width === 8 ? view.getBigUint64(8, true) : BigInt(view.getUint32(4, true))
      const start = performance.now()
      Sequence.write(into.subarray(at, at + count * width), { width, first, step }, count)
      const took = performance.now() - start
      const name = `  segment ${i}: ${fmt(count * width / 1e6)} MB, sequence of ${width}-byte words, stored ${
        fmt((9 + 2 * width) / 1e6, 6)
      } MB`
      segmentTimes.set(name, [...(segmentTimes.get(name) ?? []), took])
      at += count * width
      continue
    }
    const narrowed = coding === 1
    const word = narrowed ? input.u8() : 1
    const keep = narrowed ? input.u8() : 1
    const width = input.view.getUint8(input.offset)
    const low = input.view.getFloat64(input.offset + 5, true)
    const raw = low / keep * word
    const before = input.offset
    const start = performance.now()
    const region = into.subarray(at, at + raw)
    if (narrowed) {
      Blocks.read(input, region.subarray(raw - low))
      const words = word === 4
        ? new Uint32Array(region.buffer, region.byteOffset, raw / word)
        : new Uint16Array(region.buffer, region.byteOffset, raw / word)
      words.set(
        keep === 1
          ? region.subarray(raw - low)
          : new Uint16Array(region.buffer, region.byteOffset + raw - low, raw / word)
      )
    } else {
      Blocks.read(input, region)
    }
    const took = performance.now() - start
    if (raw >= 1 << 20) {
      const coding = narrowed ? `narrowed ${word}→${keep} bytes, then width ${width}` : `width ${width}`
      const name = `  segment ${i}: ${fmt(raw / 1e6)} MB, ${coding}, stored ${fmt((input.offset - before) / 1e6)} MB`
      segmentTimes.set(name, [...(segmentTimes.get(name) ?? []), took])
    }
    at += raw
  }
}

const steps: ReadonlyArray<readonly [string, () => unknown]> = [
  [`raw file read of the ${fmt(ipc.byteLength / 1e6)} MB IPC stream (fresh buffer)`, () => fs.readFileSync(ipcFile)],
  [`blob read, ${fmt(payload.byteLength / 1e6)} MB stored into a touched buffer`, () => readInto(payloadFile, pooled)],
  ["XXH64 of the stored bytes (checksum on read)", () => hasher.hashBytes(payload)],
  [
    "decode (handler.decodeSync: segments into a result, tableFromIPC)",
    () => handler.decodeSync!(payload, handler.version)
  ],
  ["decode the segments into touched memory", decodeSegments],
  ["tableFromIPC of the decoded stream", () => Arrow.tableFromIPC(touched)],
  ["fault in a fresh buffer of the stream's size (alloc + fill)", () => new Uint8Array(ipc.byteLength).fill(1)],
  ["prefaulted result of the stream's size (BufferPool.result)", () => BufferPool.result(ipc.byteLength)]
]

// Garbage collection: V8's gc entries (pauses), and how many of them were full collections.
let collecting = 0
let majors = 0
const collector = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    collecting += entry.duration
    if (
      (entry as { readonly detail?: { readonly kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR
    ) majors++
  }
})
collector.observe({ entryTypes: ["gc"] })

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** `ROUNDS` whole gets in a row; with `clean`, a full collection before each, outside the timing. */
const wholeGets = async (clean: boolean) => {
  const wall: Array<number> = []
  const cpu: Array<number> = []
  const gcMs: Array<number> = []
  const majorsBefore = majors
  for (let round = 0; round < ROUNDS; round++) {
    await pause(50)
    if (clean) {
      collect()
      await pause(20)
    }
    // Entries arrive after the pause they describe: read them a turn after the get.
    await new Promise((resolve) => setImmediate(resolve))
    const before = collecting
    const cpuBefore = processCpu()
    const start = performance.now()
    const got = await cache.get({ table: 1 })
    wall.push(performance.now() - start)
    cpu.push(processCpu() - cpuBefore)
    if (got === undefined) throw new Error("the table missed")
    await new Promise((resolve) => setImmediate(resolve))
    gcMs.push(collecting - before)
  }
  return { wall, cpu, gcMs, majors: (majors - majorsBefore) / ROUNDS }
}
// Warm: the first gets compile the read path and prepare the result pool's spare of this size.
for (let i = 0; i < 3; i++) await cache.get({ table: 1 })
const inRow = await wholeGets(false)
const owingNone = await wholeGets(true)

const times = steps.map(() => [] as Array<number>)
const cpus = steps.map(() => [] as Array<number>)
for (let round = 0; round < ROUNDS; round++) {
  for (let s = 0; s < steps.length; s++) {
    await pause(50)
    const cpuBefore = processCpu()
    const start = performance.now()
    steps[s]![1]()
    times[s]!.push(performance.now() - start)
    cpus[s]!.push(processCpu() - cpuBefore)
  }
}
collector.disconnect()
await cache.close()
const peer = diskcachePeer<{ readonly get: number; readonly stored: number }>("table", directory)
fs.rmSync(directory, { recursive: true, force: true })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const ms = (s: number) => median(times[s]!)
const floor = ms(1) + ms(2) + ms(3)
const floorCpu = median(cpus[1]!) + median(cpus[2]!) + median(cpus[3]!)
const versus = (x: number) => peer === undefined ? "—" : fmt(x / (peer.get * 1000), 2)
table(
  `1M-row table get, step by step (medians of ${ROUNDS}; load ${
    os.loadavg().map((x) => x.toFixed(2)).join(" ")
  }; heap after the imports ${fmt(heapAfterImports / 1e6)} MB; ${new Date().toISOString()})`,
  [
    ["step", "ms", "CPU ms", "÷ diskcache get"],
    [
      "whole get, Promise API, gets in a row",
      fmt(median(inRow.wall), 2),
      fmt(median(inRow.cpu), 2),
      versus(median(inRow.wall))
    ],
    [
      `  gc entries in it (ms) / full collections per get`,
      `${fmt(median(inRow.gcMs), 2)} / ${fmt(inRow.majors, 2)}`,
      "",
      ""
    ],
    [
      "whole get after a full collection outside the timing",
      fmt(median(owingNone.wall), 2),
      fmt(median(owingNone.cpu), 2),
      versus(median(owingNone.wall))
    ],
    [
      "  what the collections cost a get in a row (difference)",
      fmt(median(inRow.wall) - median(owingNone.wall), 2),
      fmt(median(inRow.cpu) - median(owingNone.cpu), 2),
      ""
    ],
    ...steps.flatMap(([name], s) => {
      const row = [name, fmt(ms(s), 2), fmt(median(cpus[s]!), 2), versus(ms(s))]
      return s === 4
        ? [row, ...[...segmentTimes].map(([segment, ts]) => [segment, fmt(median(ts), 2), "", ""])]
        : [row]
    }),
    ["floor: blob read + checksum + decode", fmt(floor, 2), fmt(floorCpu, 2), versus(floor)],
    [
      "python-diskcache 5.4 get (pickled pandas, median of 3)",
      peer === undefined ? "—" : fmt(peer.get * 1000, 2),
      "",
      "1.00"
    ]
  ]
)
