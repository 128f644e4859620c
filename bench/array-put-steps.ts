/**
 * Issue 21's array put, step by step: what each part of encoding a 64 MiB array costs on its own,
 * in one process — the encode under the put ratios of `bench/index.ts formats`. Each step is the
 * median of 7, steps interleaved round by round with a pause before each. Beside wall time, the CPU
 * time of this thread (`/proc/thread-self/schedstat`) and of the whole process (`/proc/self/stat`,
 * which includes libuv's threadpool), which other processes on a loaded machine disturb much less.
 *
 * `npx tsx bench/array-put-steps.ts`
 */
import * as Lz4Napi from "lz4-napi"
import * as fs from "node:fs"
import * as os from "node:os"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as Lz4 from "../src/codec/lz4.js"
import { shuffle, shuffleJs } from "../src/codec/shuffle.js"
import * as SimdShuffle from "../src/codec/simdShuffle.js"
import { fmt, table } from "./support.js"

const MiB = 1 << 20
const SIZE = 64 * MiB
const B = Blocks.BLOCK_SIZE
const ROUNDS = Number(process.env.ROUNDS ?? 7)

const signal = new Float64Array(SIZE / 8)
for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
const f64 = new Uint8Array(signal.buffer)
const i32 = new Uint8Array(new Int32Array(SIZE / 4).map((_, i) => i).buffer)
const policy: Blocks.BlockPolicy = {
  spec: Compression.byName.lz4,
  level: undefined,
  shuffle: true,
  minSize: 256,
  minSavings: 0.03
}
const touched = new Uint8Array(SIZE).fill(0)
const shuffledF64 = new Uint8Array(SIZE).fill(0)
shuffle(f64, shuffledF64, 8)
const shuffledI32 = new Uint8Array(SIZE).fill(0)
shuffle(i32, shuffledI32, 4)
const lz4Out = new Uint8Array(Lz4.bound(B)).fill(0)
const out = Buffer.allocUnsafeSlow(Blocks.bound(SIZE) + 64).fill(0)
const stored: Record<string, number> = {}

const steps: Array<readonly [string, () => unknown]> = [
  ["shuffle f64 64 MiB (JS) into touched", () => shuffleJs(f64, touched, 8)],
  ["shuffle f64 64 MiB (SIMD) into touched", () => shuffle(f64, touched, 8)],
  ["shuffle i32 64 MiB (JS) into touched", () => shuffleJs(i32, touched, 4)],
  ["shuffle i32 64 MiB (SIMD) into touched", () => shuffle(i32, touched, 4)],
  ["LZ4 compress (lz4.ts) 4 shuffled f64 blocks into touched", () => {
    for (let at = 0; at < SIZE; at += B) Lz4.compress(shuffledF64.subarray(at, at + B), lz4Out, 0, lz4Out.length)
  }],
  ["LZ4 compress (lz4.ts) 4 shuffled i32 blocks into touched", () => {
    for (let at = 0; at < SIZE; at += B) Lz4.compress(shuffledI32.subarray(at, at + B), lz4Out, 0, lz4Out.length)
  }],
  ["lz4-napi compressSync 4 shuffled f64 blocks (fresh output)", () => {
    for (let at = 0; at < SIZE; at += B) Lz4Napi.compressSync(Buffer.from(shuffledF64.buffer, at, B))
  }],
  [
    "lz4-napi compress async, 4 f64 blocks on the threadpool",
    () => Promise.all([0, 1, 2, 3].map((k) => Lz4Napi.compress(Buffer.from(shuffledF64.buffer, k * B, B))))
  ],
  ["Blocks.write f64 (one thread, JS shuffle)", () => {
    SimdShuffle.enable(false)
    const w = new Blocks.Writer(out, 0)
    Blocks.write(w, f64, 8, policy)
    SimdShuffle.enable(true)
  }],
  ["Blocks.write f64 (one thread)", () => {
    const w = new Blocks.Writer(out, 0)
    Blocks.write(w, f64, 8, policy)
    stored["f64 write"] = w.offset / SIZE
  }],
  ...([["f64", f64, 8], ["i32", i32, 4]] as const).flatMap(([name, bytes, width]) =>
    ([
      ["1 block here, JS shuffle (before)", 1, false],
      ["1 block here", 1, true],
      [
        "2 blocks here",
        2,
        true
      ],
      ["all 4 here", 4, true],
      ["default (sampled)", undefined, true]
    ] as const).map(([variant, onMain, simd]) =>
      [
        `Blocks.writeParallel ${name}, ${variant}`,
        async () => {
          SimdShuffle.enable(simd)
          const w = new Blocks.Writer(out, 0)
          await Blocks.writeParallel(w, bytes, width, policy, B, onMain)
          SimdShuffle.enable(true)
          stored[`${name} ${variant}`] = w.offset / SIZE
        }
      ] as const
    )
  )
]

/** This thread's CPU time in ms (Linux), else NaN. */
const threadCpu = (): number => {
  try {
    return Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6
  } catch {
    return NaN
  }
}
/** The whole process's CPU time in ms (utime + stime; clock ticks of 10 ms). */
const processCpu = (): number => {
  const usage = process.cpuUsage()
  return (usage.user + usage.system) / 1000
}

export const run = async (extra: Array<readonly [string, () => unknown]> = []) => {
  // STEPS=<regex> runs only the steps whose names match.
  const only = process.env.STEPS === undefined ? undefined : new RegExp(process.env.STEPS)
  const all = [...steps, ...extra].filter(([name]) => only === undefined || only.test(name))
  const times = all.map(() => [] as Array<number>)
  const cpus = all.map(() => [] as Array<number>)
  const procs = all.map(() => [] as Array<number>)
  for (let round = 0; round < ROUNDS; round++) {
    // A new order every round: what ran just before a step (the allocator's state after
    // lz4-napi's fresh outputs, the caches) changes its cost.
    const order = all.map((_, s) => s).sort(() => Math.random() - 0.5)
    for (const s of order) {
      await new Promise((resolve) => setTimeout(resolve, 100))
      const cpu = threadCpu()
      const proc = processCpu()
      const start = performance.now()
      await all[s]![1]()
      times[s]!.push(performance.now() - start)
      cpus[s]!.push(threadCpu() - cpu)
      procs[s]!.push(processCpu() - proc)
    }
  }
  const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
  table(
    `64 MiB array encode, step by step (medians of ${ROUNDS}, interleaved in a new random order each round; load ${
      os.loadavg().map((x) => x.toFixed(2)).join(" ")
    }; ${new Date().toISOString()})`,
    [
      ["step", "ms", "MB/s", "main CPU ms", "process CPU ms"],
      ...all.map(([name], s) => [
        name,
        fmt(median(times[s]!)),
        fmt(SIZE / 1e6 / (median(times[s]!) / 1000), 0),
        fmt(median(cpus[s]!)),
        fmt(median(procs[s]!))
      ])
    ]
  )
  console.log("stored/raw", Object.entries(stored).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", "))
}

await run()
