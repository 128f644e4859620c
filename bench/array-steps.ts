/**
 * Step table for issue 21's arrays: what each step of a 64 MiB get and put costs on its own.
 * `npx tsx bench/array-steps.ts`
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import xxhash from "xxhash-wasm"
import * as Lz4 from "../src/codec/lz4.js"
import { shuffle, unshuffle } from "../src/codec/shuffle.js"

const MiB = 1 << 20
const now = () => performance.now()
const med = (xs: Array<number>) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const time = async (reps: number, f: () => unknown) => {
  const xs: Array<number> = []
  for (let i = 0; i < reps; i++) {
    const s = now()
    await f()
    xs.push(now() - s)
  }
  return med(xs)
}
const size = 64 * MiB
const signal = new Float64Array(size / 8)
for (let i = 0; i < signal.length; i++) signal[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
const src = new Uint8Array(signal.buffer)
const shuffled = new Uint8Array(size).fill(1)
shuffle(src, shuffled, 8)
const B = 16 * MiB
const packed: Array<Uint8Array> = []
for (let at = 0; at < size; at += B) {
  const out = new Uint8Array(Lz4.bound(B)).fill(0)
  const n = Lz4.compress(shuffled.subarray(at, at + B), out, 0, out.length)
  packed.push(out.subarray(0, n))
}
const scratch = new Uint8Array(B).fill(0)
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "steps-"))
const file = path.join(dir, "f")
fs.writeFileSync(file, src)
const zero = fs.openSync("/dev/zero", "r")
const prefault = (buf: Uint8Array, at: number, n: number) =>
  new Promise<void>((res, rej) => fs.read(zero, buf, at, n, null, (e) => (e ? rej(e) : res())))
const api = await xxhash()
const rows: Array<[string, number]> = []
const add = async (name: string, f: () => unknown) => rows.push([name, await time(5, f)])
await add("fresh 64 MiB ArrayBuffer, fill on main", () => new Uint8Array(size).fill(1))
await add("fresh 64 MiB, /dev/zero read on threadpool (1 call)", () => prefault(new Uint8Array(size), 0, size))
await add("fresh 64 MiB, /dev/zero read on threadpool (4 x 16 MiB parallel)", () => {
  const r = new Uint8Array(size)
  return Promise.all([0, 1, 2, 3].map((i) => prefault(r, i * B, B)))
})
await add("readFileSync 64 MiB (raw read)", () => fs.readFileSync(file))
const pooled = Buffer.allocUnsafeSlow(size).fill(0)
await add("read 64 MiB into touched buffer (readSync)", () => fs.readSync(fs.openSync(file, "r"), pooled, 0, size, 0))
await add("xxh64 45 MiB (1 MiB pieces)", () => {
  const st = api.create64(0n)
  for (let at = 0; at < 45 * MiB; at += MiB) st.update(src.subarray(at, at + MiB))
  st.digest()
})
await add("LZ4 decompress 4 blocks into touched scratch", () => {
  for (const p of packed) Lz4.decompress(p, scratch)
})
const touched = new Uint8Array(size).fill(0)
await add("unshuffle 64 MiB into touched", () => {
  for (let at = 0; at < size; at += B) unshuffle(shuffled.subarray(at, at + B), touched.subarray(at, at + B), 8)
})
await add("decode (LZ4 + unshuffle) into fresh, sequential", () => {
  const r = new Uint8Array(size)
  for (let i = 0; i < 4; i++) {
    Lz4.decompress(packed[i]!, scratch)
    unshuffle(scratch, r.subarray(i * B, (i + 1) * B), 8)
  }
})
await add("decode into fresh, threadpool prefaults block by block ahead", async () => {
  const r = new Uint8Array(size)
  const ready = [0, 1, 2, 3].map((i) => prefault(r, i * B, B))
  for (let i = 0; i < 4; i++) {
    Lz4.decompress(packed[i]!, scratch)
    await ready[i]
    unshuffle(scratch, r.subarray(i * B, (i + 1) * B), 8)
  }
})
await add("shuffle 64 MiB into touched", () => shuffle(src, touched, 8))
const out = new Uint8Array(Lz4.bound(B)).fill(0)
await add("LZ4 compress 4 shuffled blocks into touched", () => {
  for (let at = 0; at < size; at += B) Lz4.compress(shuffled.subarray(at, at + B), out, 0, out.length)
})
await add("writeFileSync 45 MiB new file", () => {
  fs.rmSync(file, { force: true })
  fs.writeFileSync(file, src.subarray(0, 45 * MiB))
})
// (directory removed at the end)
console.log(`load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`)
for (const [name, ms] of rows) console.log(`${name.padEnd(66)} ${ms.toFixed(1).padStart(7)} ms`)
{
  const Lz4Napi = await import("lz4-napi")
  const blocks = [0, 1, 2, 3].map((i) => Buffer.from(shuffled.buffer, i * B, B))
  const napiPacked = blocks.map((b) => Lz4Napi.compressSync(b))
  const sizes = napiPacked.reduce((a, b) => a + b.byteLength, 0)
  const r2: Array<[string, number]> = []
  const add2 = async (name: string, f: () => unknown) => r2.push([name, await time(5, f)])
  await add2("lz4-napi uncompressSync 4 blocks", () => napiPacked.map((p) => Lz4Napi.uncompressSync(p)))
  await add2(
    "lz4-napi uncompress async 4 blocks in parallel",
    () => Promise.all(napiPacked.map((p) => Lz4Napi.uncompress(p)))
  )
  await add2("lz4-napi async uncompress + unshuffle on main as they land", async () => {
    const r = new Uint8Array(size)
    const ready = [0, 1, 2, 3].map((i) => prefault(r, i * B, B))
    const jobs = napiPacked.map((p) => Lz4Napi.uncompress(p))
    for (let i = 0; i < 4; i++) {
      const plain = await jobs[i]!
      await ready[i]
      unshuffle(plain, r.subarray(i * B, (i + 1) * B), 8)
    }
  })
  await add2("lz4-napi compressSync 4 blocks", () => blocks.map((b) => Lz4Napi.compressSync(b)))
  await add2("lz4-napi compress async 4 blocks in parallel", () => Promise.all(blocks.map((b) => Lz4Napi.compress(b))))
  console.log(`lz4-napi 16 MiB blocks stored/raw ${(sizes / size).toFixed(4)}; load ${os.loadavg()[0]!.toFixed(2)}`)
  for (const [name, ms] of r2) console.log(`${name.padEnd(66)} ${ms.toFixed(1).padStart(7)} ms`)
}
{
  const Blocks = await import("../src/codec/blocks.js")
  const Compression = await import("../src/codec/compression.js")
  const Prefault = await import("../src/shared/prefault.js")
  const policy = { spec: Compression.byName.lz4, level: undefined, shuffle: true, minSize: 256, minSavings: 0.03 }
  const ramp = new Int32Array(size / 4).map((_, i) => i)
  const values: Array<[string, Uint8Array, number]> = [["f64", src, 8], ["i32", new Uint8Array(ramp.buffer), 4]]
  const outBuf = Buffer.allocUnsafeSlow(Blocks.bound(size) + 64).fill(0)
  const r3: Record<string, Array<number>> = {}
  const stored: Record<string, number> = {}
  const streams: Record<string, Uint8Array> = {}
  const push = (k: string, v: number) => (r3[k] ??= []).push(v)
  for (let rep = 0; rep < 5; rep++) {
    for (const [name, bytes, width] of values) {
      // Interleaved: old (one thread, TS LZ4) and new (threadpool, lz4-napi) on the same value.
      let w = new Blocks.Writer(outBuf, 0)
      let s = now()
      Blocks.write(w, bytes, width, policy)
      push(`${name} encode, TS LZ4 on this thread (before)`, now() - s)
      stored[`${name} before`] = w.offset / size
      w = new Blocks.Writer(outBuf, 0)
      s = now()
      await Blocks.writeParallel(w, bytes, width, policy)
      push(`${name} encode, lz4-napi on the threadpool (after)`, now() - s)
      stored[`${name} after`] = w.offset / size
      streams[name] = outBuf.slice(0, w.offset)
      const stream = streams[name]!
      s = now()
      Blocks.read(new Blocks.Reader(stream, 0), new Uint8Array(size))
      push(`${name} decode into fresh, this thread faults (before)`, now() - s)
      s = now()
      {
        const r = new Uint8Array(size)
        const input = new Blocks.Reader(stream, 0)
        await Blocks.readAsync(input, r, Prefault.help(r, Blocks.helpFrom(input, size)), Prefault.PIECE)
      }
      push(`${name} decode into fresh, threadpool faults the top (after)`, now() - s)
    }
  }
  // compression "none": a raw block copied into the fresh result
  const rawStream = Buffer.allocUnsafeSlow(Blocks.bound(size)).fill(0)
  Blocks.write(new Blocks.Writer(rawStream, 0), src, 8, { ...policy, spec: Compression.byName.none })
  for (let rep = 0; rep < 5; rep++) {
    let s = now()
    Blocks.read(new Blocks.Reader(rawStream, 0), new Uint8Array(size))
    push("none decode (copy) into fresh, this thread faults (before)", now() - s)
    s = now()
    {
      const r = new Uint8Array(size)
      const input = new Blocks.Reader(rawStream, 0)
      await Blocks.readAsync(input, r, Prefault.help(r, Blocks.helpFrom(input, size)), Prefault.PIECE)
    }
    push("none decode (copy) into fresh, threadpool faults the top half (after)", now() - s)
    s = now()
    fs.writeFileSync(file, src)
    fs.readFileSync(file)
    push("raw readFileSync 64 MiB (for comparison; includes a write)", now() - s)
  }
  console.log(
    `\nencode/decode, 64 MiB, medians of 5 interleaved; load ${os.loadavg().map((x) => x.toFixed(2)).join(" ")}`
  )
  for (const [name, xs] of Object.entries(r3)) console.log(`${name.padEnd(72)} ${med(xs).toFixed(1).padStart(7)} ms`)
  console.log("stored/raw", Object.entries(stored).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(", "))
}
fs.rmSync(dir, { recursive: true, force: true })
