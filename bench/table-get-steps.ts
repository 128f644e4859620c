/**
 * Issue 21's table get, step by step: what each part of reading the 1M-row table back costs on its
 * own (int64 id, float64 value, dictionary utf8 of 50 values — bench/formats.ts's table), in one
 * process, beside the whole get through the Promise API and python-diskcache's get of the same
 * pandas DataFrame (pickled; `bench/peer/diskcache_bench.py table`). The read, the checksum and
 * the decode are what every get pays: their sum is the floor under the table's get ratio. Each
 * step is the median of 15, steps interleaved round by round, a short pause before each.
 *
 * `npx tsx bench/table-get-steps.ts`
 */
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { PerformanceObserver } from "node:perf_hooks"
import * as Blocks from "../src/codec/blocks.js"
import { handler } from "../src/codec/formats/arrow.js"
import type { CompressionSettings } from "../src/codec/service.js"
import { cacheness } from "../src/index.js"
import * as Xxhash from "../src/key/xxhash.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { arrowTable, benchDir, diskcachePeer, fmt, readInto, table } from "./support.js"

const ROWS = 1_000_000
const ROUNDS = 15

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

/** The payload's segments decoded one by one into a touched IPC buffer, timed each. */
const segmentTimes = new Map<string, Array<number>>()
const decodeSegments = () => {
  const input = new Blocks.Reader(payload, 0)
  input.u8()
  const length = input.f64()
  const into = touched.subarray(0, length)
  const segments = input.u32()
  let at = 0
  for (let i = 0; i < segments; i++) {
    const width = input.view.getUint8(input.offset)
    const raw = input.view.getFloat64(input.offset + 5, true)
    const before = input.offset
    const start = performance.now()
    Blocks.read(input, into.subarray(at, at + raw))
    const took = performance.now() - start
    if (raw >= 1 << 20) {
      const name = `  segment ${i}: ${fmt(raw / 1e6)} MB, width ${width}, stored ${
        fmt((input.offset - before) / 1e6)
      } MB`
      segmentTimes.set(name, [...(segmentTimes.get(name) ?? []), took])
    }
    at += raw
  }
}

const steps: ReadonlyArray<readonly [string, () => unknown]> = [
  ["whole get, Promise API (cache.get)", () => cache.get({ table: 1 })],
  [`raw file read of the ${fmt(ipc.byteLength / 1e6)} MB IPC stream (fresh buffer)`, () => fs.readFileSync(ipcFile)],
  [`blob read, ${fmt(payload.byteLength / 1e6)} MB stored into a touched buffer`, () => readInto(payloadFile, pooled)],
  ["XXH64 of the stored bytes (checksum on read)", () => hasher.hashBytes(payload)],
  ["decode (handler.decodeSync: segments into a result, tableFromIPC)", () => handler.decodeSync!(payload, 2)],
  ["decode the segments into touched memory", decodeSegments],
  ["tableFromIPC of the decoded stream", () => Arrow.tableFromIPC(touched)],
  ["fault in a fresh buffer of the stream's size (alloc + fill)", () => new Uint8Array(ipc.byteLength).fill(1)],
  ["prefaulted result of the stream's size (BufferPool.result)", () => BufferPool.result(ipc.byteLength)]
]

// Garbage collection inside the whole gets: each drops a table of fresh memory (tens of MB of
// external memory), and V8 answers external memory with a full mark of the heap.
let collecting = 0
const collector = new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) collecting += entry.duration
})
collector.observe({ entryTypes: ["gc"] })
const times = steps.map(() => [] as Array<number>)
const collected: Array<number> = []
for (let round = 0; round < ROUNDS; round++) {
  for (let s = 0; s < steps.length; s++) {
    await new Promise((resolve) => setTimeout(resolve, 50))
    const before = collecting
    const start = performance.now()
    const out = steps[s]![1]()
    if (out instanceof Promise) await out
    times[s]!.push(performance.now() - start)
    // Entries arrive after the pause they describe: wait a turn before reading them.
    await new Promise((resolve) => setImmediate(resolve))
    if (s === 0) collected.push(collecting - before)
  }
}
collector.disconnect()
await cache.close()
const peer = diskcachePeer<{ readonly get: number; readonly stored: number }>("table", directory)
fs.rmSync(directory, { recursive: true, force: true })

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const ms = (s: number) => median(times[s]!)
const floor = ms(2) + ms(3) + ms(4)
table(
  `1M-row table get, step by step (medians of ${ROUNDS}, interleaved; load ${
    os.loadavg().map((x) => x.toFixed(2)).join(" ")
  }; ${new Date().toISOString()})`,
  [
    ["step", "ms", "÷ diskcache get"],
    ...steps.flatMap(([name], s) => {
      const row = [name, fmt(ms(s), 2), peer === undefined ? "—" : fmt(ms(s) / (peer.get * 1000), 2)]
      if (s === 0) return [row, ["  of which garbage collection (V8 gc entries)", fmt(median(collected), 2), ""]]
      return s === 5
        ? [row, ...[...segmentTimes].map(([segment, ts]) => [segment, fmt(median(ts), 2), ""])]
        : [row]
    }),
    [
      "floor: blob read + checksum + decode",
      fmt(floor, 2),
      peer === undefined ? "—" : fmt(floor / (peer.get * 1000), 2)
    ],
    [
      "python-diskcache 5.4 get (pickled pandas, median of 3)",
      peer === undefined ? "—" : fmt(peer.get * 1000, 2),
      "1.00"
    ]
  ]
)
