/**
 * Issue 21's array gets with and without the block worker (`src/codec/blockWorkers.ts`), A/B in
 * one process: the 64 MiB float64 and int32 arrays of `bench/index.ts formats` through the
 * Promise API, each round reading the raw file, then getting with the worker off and on (order
 * alternating by round), 150 ms apart; plus the put of each, and python-diskcache's figures for
 * the same arrays (`bench/peer/diskcache_bench.py arrays`) run before, between and after the
 * rounds. Medians; wall and this thread's CPU (`/proc/thread-self/schedstat`).
 *
 * `npx tsx bench/array-workers.ts [rounds]`
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as BlockWorkers from "../src/codec/blockWorkers.js"
import { cacheness } from "../src/index.js"
import { benchDir, diskcachePeer, fmt, table } from "./support.js"

const MiB = 1 << 20
const SIZE = 64 * MiB
const ROUNDS = Number(process.argv[2] ?? 9)

const f64 = new Float64Array(SIZE / 8)
for (let i = 0; i < f64.length; i++) f64[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
const i32 = new Int32Array(SIZE / 4).map((_, i) => i)
const arrays = [["Float64Array smooth", f64, "f64"], ["Int32Array ascending", i32, "i32"]] as const

const directory = benchDir("array-workers")
const cache = cacheness({ directory: path.join(directory, "cache"), maxSize: null, cleanupOnOpen: false })

const threadCpu = (): number => {
  try {
    return Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6
  } catch {
    return NaN
  }
}
const pause = () => new Promise((resolve) => setTimeout(resolve, 150))
const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const timed = async (f: () => unknown) => {
  const cpu = threadCpu()
  const start = performance.now()
  await f()
  return { ms: performance.now() - start, cpu: threadCpu() - cpu }
}

interface PeerArray {
  readonly put: number
  readonly get: number
}
const peers: Array<Record<string, PeerArray>> = []
const peer = () => {
  const result = diskcachePeer<Record<string, PeerArray>>("arrays", directory)
  if (result !== undefined) peers.push(result)
}

const warm = await BlockWorkers.warm(64 << 20)
const loadBefore = os.loadavg()[0]!
peer()
const samples = arrays.map(() => ({
  read: [] as Array<number>,
  put: [] as Array<number>,
  off: [] as Array<number>,
  on: [] as Array<number>,
  offCpu: [] as Array<number>,
  onCpu: [] as Array<number>,
  onWait: [] as Array<number>
}))
const files = arrays.map(([, value], a) => {
  const file = path.join(directory, `raw-${a}`)
  fs.writeFileSync(file, new Uint8Array(value.buffer))
  return file
})
const get = async (key: string, worker: boolean) => {
  BlockWorkers.enable(worker)
  try {
    const back = await cache.get({ array: key })
    if (back === undefined) throw new Error(`${key}: missed`)
  } finally {
    BlockWorkers.enable(true)
  }
}
for (let round = 0; round < ROUNDS; round++) {
  if (round === ROUNDS >> 1) peer()
  for (let a = 0; a < arrays.length; a++) {
    const [, value, key] = arrays[a]!
    const s = samples[a]!
    await pause()
    s.put.push((await timed(() => cache.put({ array: key }, value))).ms)
    await pause()
    s.read.push((await timed(() => fs.readFileSync(files[a]!))).ms)
    for (const worker of round % 2 === 0 ? [false, true] : [true, false]) {
      await pause()
      // Let the worker finish a job a previous get left it (it then takes the next one).
      await BlockWorkers.settled()
      const waited = BlockWorkers.waitedMs()
      const t = await timed(() => get(key, worker))
      if (worker) s.onWait.push(BlockWorkers.waitedMs() - waited)
      ;(worker ? s.on : s.off).push(t.ms)
      ;(worker ? s.onCpu : s.offCpu).push(t.cpu)
    }
  }
}
peer()
await cache.close()
fs.rmSync(directory, { recursive: true, force: true })

const mb = (ms: number) => SIZE / 1e6 / (ms / 1000)
const peerMedian = (key: string, what: "put" | "get") =>
  peers.length === 0 ? undefined : median(peers.map((p) => SIZE / 1e6 / p[key]![what]))
table(
  `64 MiB array gets, block worker off / on (medians of ${ROUNDS} rounds, interleaved; worker ${
    warm ? "started" : "unavailable"
  }; diskcache: median of ${peers.length} peer runs; load ${fmt(loadBefore, 2)} → ${fmt(os.loadavg()[0]!, 2)}; ${
    new Date().toISOString()
  })`,
  [
    [
      "value",
      "fs read MB/s",
      "diskcache get",
      "get off MB/s",
      "get on MB/s",
      "on ÷ off",
      "on ÷ diskcache",
      "on ÷ fs read",
      "CPU ms off / on",
      "waited for worker ms",
      "put MB/s",
      "diskcache put",
      "put ÷ diskcache"
    ],
    ...arrays.map(([name, , key], a) => {
      const s = samples[a]!
      const dcGet = peerMedian(key, "get")
      const dcPut = peerMedian(key, "put")
      const on = mb(median(s.on))
      return [
        name,
        fmt(mb(median(s.read)), 0),
        fmt(dcGet, 0),
        fmt(mb(median(s.off)), 0),
        fmt(on, 0),
        fmt(median(s.off) / median(s.on), 2),
        dcGet === undefined ? "—" : fmt(on / dcGet, 2),
        fmt(on / mb(median(s.read)), 2),
        `${fmt(median(s.offCpu))} / ${fmt(median(s.onCpu))}`,
        fmt(median(s.onWait)),
        fmt(mb(median(s.put)), 0),
        fmt(dcPut, 0),
        dcPut === undefined ? "—" : fmt(mb(median(s.put)) / dcPut, 2)
      ]
    })
  ]
)
