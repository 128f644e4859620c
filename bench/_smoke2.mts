import * as fs from "node:fs"
import * as Blocks from "../src/codec/blocks.js"
import * as BW from "../src/codec/blockWorkers.js"
import * as Compression from "../src/codec/compression.js"
const SIZE = 64 << 20
const signal = new Float64Array(SIZE / 8)
for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
const raw = new Uint8Array(signal.buffer)
const out = new Blocks.Writer(new Uint8Array(Blocks.bound(SIZE)).fill(0), 0)
Blocks.write(out, raw, 8, { spec: Compression.byName.lz4, level: undefined, shuffle: true, minSize: 256, minSavings: 0.03 })
const stream = out.bytes.subarray(0, out.offset)
console.log("warm", await BW.warm())
const none = () => undefined
const cpu = () => Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6
const a = new Uint8Array(SIZE).fill(1)
const res: number[][] = [[], [], [], []]
for (let r = 0; r < 15; r++) {
  await new Promise((r) => setTimeout(r, 100))
  let c = cpu(); let t = performance.now()
  BW.enable(false)
  await Blocks.readAsync(new Blocks.Reader(stream, 0), a, none, 4 << 20)
  res[0].push(performance.now() - t); res[1].push(cpu() - c)
  BW.enable(true)
  await new Promise((r) => setTimeout(r, 100))
  c = cpu(); t = performance.now()
  await Blocks.readAsync(new Blocks.Reader(stream, 0), a, none, 4 << 20)
  res[2].push(performance.now() - t); res[3].push(cpu() - c)
}
const med = (x: number[]) => [...x].sort((p, q) => p - q)[x.length >> 1].toFixed(1)
console.log("single wall/cpu", med(res[0]), med(res[1]), "parallel wall/cpu", med(res[2]), med(res[3]), Buffer.compare(a, raw))
for (let r = 0; r < 6; r++) {
  await new Promise((r) => setTimeout(r, 100))
  const t = performance.now()
  await Blocks.readAsync(new Blocks.Reader(stream, 0), a, none, 4 << 20)
  const T = (globalThis as any).__t, W = (globalThis as any).__w
  console.log("total", (performance.now() - t).toFixed(1), "post", T[1].toFixed(1), "main done", T[2].toFixed(1), "reply", T[3].toFixed(1), "worker start", (W[1] - T[0]).toFixed(1), "worker took", W[0].toFixed(1), "copyin", T[4].toFixed(1), "end", T[5].toFixed(1))
}
