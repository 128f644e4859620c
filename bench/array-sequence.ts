/**
 * Issue 21's array sequence as `bench/index.ts formats` runs it (Promise API, put then get of the
 * same key, no pause, 3 rounds per value: float64 lz4, int32 lz4, float64 `none`, int32 `none`),
 * repeated `--reps` times, without the peer. Per operation: wall ms, this thread's CPU
 * (`/proc/thread-self/schedstat`), the other threads' CPU (`process.cpuUsage` minus it),
 * the time this thread waited for a core (the run-queue field of schedstat), the garbage collector's
 * pauses (`PerformanceObserver` "gc" entries), and for gets whether the
 * 64 MiB result spare was ready (or still being filled) when the get came. Medians over rounds 2–3 of every rep
 * (round 1 follows another value), which is what the bench's median of 3 mostly reports.
 *
 * `npx tsx bench/array-sequence.ts [--reps 3]`
 */
import * as fs from "node:fs"
import * as path from "node:path"
import { PerformanceObserver } from "node:perf_hooks"
import { cacheness } from "../src/index.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { benchDir, fmt, now, table } from "./support.js"

const MiB = 1 << 20
const SIZE = 64 * MiB
const reps = Number(process.argv[process.argv.indexOf("--reps") + 1] ?? 3) || 3

const schedstat = () => fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ").map(Number)
const threadCpu = () => schedstat()[0]! / 1e6
const threadQueued = () => schedstat()[1]! / 1e6
const processCpu = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1000
}

const signal = new Float64Array(SIZE / 8)
for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
const ramp = new Int32Array(SIZE / 4).map((_, i) => i)

const directory = benchDir("array-sequence")
const lz4 = cacheness({ directory: path.join(directory, "lz4"), maxSize: null, cleanupOnOpen: false })
const none = cacheness({
  directory: path.join(directory, "none"),
  maxSize: null,
  cleanupOnOpen: false,
  compression: { byKind: { array: { codec: "none" } } }
})

// Garbage collection pauses on this thread (V8 starts one per ~64 MiB of new external memory).
let gcMs = 0
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcMs += entry.duration
}).observe({ entryTypes: ["gc"] })

interface Sample {
  wall: number
  main: number
  queued: number
  gc: number
  other: number
  ready?: boolean
  filling?: boolean
}
const samples = new Map<string, Array<Sample>>()
const record = (name: string, s: Sample) => {
  if (!samples.has(name)) samples.set(name, [])
  samples.get(name)!.push(s)
}
const timed = async <A>(f: () => Promise<A>): Promise<[A, Sample]> => {
  const w = now()
  const t = threadCpu()
  const q = threadQueued()
  const p = processCpu()
  const g = gcMs
  const a = await f()
  const main = threadCpu() - t
  return [a, { wall: now() - w, main, queued: threadQueued() - q, gc: gcMs - g, other: processCpu() - p - main }]
}

const values = [
  ["f64 lz4", signal, lz4],
  ["i32 lz4", ramp, lz4],
  ["f64 none", signal, none],
  ["i32 none", ramp, none]
] as const

for (let rep = 0; rep < reps; rep++) {
  for (const [name, value, on] of values) {
    for (let round = 0; round < 3; round++) {
      const [, put] = await timed(() => on.put({ peer: name }, value))
      const ready = BufferPool.sparesReady().includes(SIZE)
      const filling = (BufferPool as { sparesFilling?: () => ReadonlyArray<number> }).sparesFilling?.().includes(SIZE)
      const [back, get] = await timed(() => on.get({ peer: name }))
      if (back === undefined) throw new Error(`${name}: missed`)
      if (round > 0) {
        record(`${name} put`, put)
        record(`${name} get`, { ...get, ready, filling })
      }
    }
  }
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const rows = [[
  "op",
  "n",
  "wall ms",
  "main CPU ms",
  "main queued ms",
  "GC ms",
  "other CPU ms",
  "spare ready",
  "filling"
]]
for (const [name, ss] of samples) {
  rows.push([
    name,
    String(ss.length),
    fmt(median(ss.map((s) => s.wall))),
    fmt(median(ss.map((s) => s.main))),
    fmt(median(ss.map((s) => s.queued))),
    fmt(median(ss.map((s) => s.gc))),
    fmt(median(ss.map((s) => s.other))),
    ss[0]!.ready === undefined ? "" : `${ss.filter((s) => s.ready).length}/${ss.length}`,
    ss[0]!.ready === undefined ? "" : `${ss.filter((s) => s.filling).length}`
  ])
}
table(`Issue 21 array sequence, rounds 2-3 of ${reps} reps, medians (${process.env.VARIANT ?? "head"})`, rows)
await lz4.close()
await none.close()
fs.rmSync(directory, { recursive: true, force: true })
