/**
 * Storage formats: byte-shuffle and LZ4 speed, and put/get of a 64 MiB smooth Float64Array, a 64 MiB
 * ascending Int32Array and a 1,000,000-row Arrow table (int64 id, float64 value, dictionary utf8
 * category of 50 values) through `Cache.layer` on disk — the table as Arrow IPC and as Parquet
 * (`tables: "parquet"`) — beside raw file write/read of the same uncompressed bytes, plain LZ4
 * without shuffle, and whole-buffer shuffle + LZ4 (Blosc's default). Then Parquet through DuckDB
 * (the alternative to parquet-wasm, not used), and a 256 MiB array in a child process, to show
 * peak RSS. Last, issue 21's comparison: the arrays and the table through the Promise API
 * (`cacheness(...)`) beside python-diskcache 5.4 storing numpy arrays and a pickled pandas DataFrame
 * (`bench/peer/diskcache_bench.py arrays|table`) and raw file write/read, medians of 3 each; the
 * table's cell in a child process of its own (`--table`), as the peer runs each cell.
 *
 * `npm run bench -- formats`, or `npx tsx bench/formats.ts [--large | --table]`.
 */
import { BIGINT, DOUBLE, DuckDBDataChunk, DuckDBInstance, VARCHAR } from "@duckdb/node-api"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Lz4Napi from "lz4-napi"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import * as Cache from "../src/Cache.js"
import * as Blocks from "../src/codec/blocks.js"
import * as Compression from "../src/codec/compression.js"
import * as ArrowFormat from "../src/codec/formats/arrow.js"
import * as Lz4 from "../src/codec/lz4.js"
import * as CodecDefault from "../src/codec/registry.js"
import { shuffle, shuffleNaive, unshuffle } from "../src/codec/shuffle.js"
import * as Simd from "../src/codec/simd.js"
import { cacheness } from "../src/index.js"
import * as Xxhash from "../src/key/xxhash.js"
import type { CacheConfig } from "../src/schema/CacheConfig.js"
import * as BufferPool from "../src/shared/bufferPool.js"
import { arrowTable, benchDir, diskcachePeer, fmt, isMain, now, ratio, readInto, table } from "./support.js"

const MiB = 1024 * 1024
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)

const best = (reps: number, f: (i: number) => void): number => {
  let min = Infinity
  for (let i = 0; i < reps; i++) {
    const start = now()
    f(i)
    min = Math.min(min, now() - start)
  }
  return min
}

const smoothSignal = (bytes: number) => {
  const out = new Float64Array(bytes / 8)
  for (let i = 0; i < out.length; i++) out[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
  return out
}

const ascending = (bytes: number) => new Int32Array(bytes / 4).map((_, i) => i)

const shuffleTable = () => {
  const size = 64 * MiB
  const src = new Uint8Array(smoothSignal(size).buffer)
  const dst = new Uint8Array(size).fill(1)
  const rows: Array<Array<string>> = [["64 MiB, 8-byte elements", "MB/s"]]
  rows.push(["memcpy into touched memory", fmt(mbps(size, best(3, () => dst.set(src))), 0)])
  rows.push(["write into fresh memory (alloc + fill)", fmt(mbps(size, best(3, () => new Uint8Array(size).fill(1))), 0)])
  rows.push(["shuffle, byte loop", fmt(mbps(size, best(3, () => shuffleNaive(src, dst, 8))), 0)])
  rows.push(["shuffle, 4x4 word transpose (used)", fmt(mbps(size, best(3, () => shuffle(src, dst, 8))), 0)])
  rows.push(["unshuffle, 4x4 word transpose (fallback)", fmt(mbps(size, best(3, () => unshuffle(src, dst, 8))), 0)])
  // The module works on one 16 MiB block at a time, as the decoder does (its memory stays that size).
  const quarters = (run: (at: number) => void) => () => {
    for (let at = 0; at < size; at += Blocks.BLOCK_SIZE) run(at)
  }
  if (Simd.available) {
    Simd.planes(Blocks.BLOCK_SIZE).fill(7)
    rows.push([
      "unshuffle, WebAssembly SIMD by 128 KiB chunks (used)",
      fmt(mbps(size, best(3, quarters((at) => Simd.unshuffle(dst.subarray(at, at + Blocks.BLOCK_SIZE), 8)))), 0)
    ])
  }
  rows.push(["shuffle 4-byte elements (used)", fmt(mbps(size, best(3, () => shuffle(src, dst, 4))), 0)])
  shuffle(src, dst, 8)
  const shuffled = Buffer.from(dst.buffer)
  const packed = new Uint8Array(Lz4.bound(size)).fill(0)
  const napiPacked = Lz4Napi.compressSync(shuffled)
  rows.push([
    "LZ4 compress, lz4-napi (fresh output buffer)",
    fmt(mbps(size, best(3, () => Lz4Napi.compressSync(shuffled))), 0)
  ])
  rows.push([
    "LZ4 compress, TypeScript into touched memory (used)",
    fmt(mbps(size, best(3, () => Lz4.compress(shuffled, packed, 0, packed.length))), 0)
  ])
  rows.push([
    "LZ4 decompress, lz4-napi (fresh output buffer)",
    fmt(mbps(size, best(3, () => Lz4Napi.uncompressSync(napiPacked))), 0)
  ])
  const back = new Uint8Array(size).fill(0)
  rows.push([
    "LZ4 decompress, TypeScript into touched memory (fallback)",
    fmt(mbps(size, best(3, () => Lz4.decompress(napiPacked.subarray(4), back))), 0)
  ])
  if (Simd.available) {
    const blocks: Array<Uint8Array> = []
    for (let at = 0; at < size; at += Blocks.BLOCK_SIZE) {
      blocks.push(Lz4Napi.compressSync(shuffled.subarray(at, at + Blocks.BLOCK_SIZE)).subarray(4))
    }
    rows.push([
      "LZ4 decompress, WebAssembly, 16 MiB blocks copied in + decoded (used)",
      fmt(
        mbps(
          size,
          best(3, quarters((at) => Simd.decompressToPlanes(blocks[at / Blocks.BLOCK_SIZE]!, Blocks.BLOCK_SIZE)))
        ),
        0
      )
    ])
  }
  table("Byte shuffle and LZ4 on 64 MiB (higher is better)", rows)
}

interface Case {
  readonly name: string
  /** Settings of the cache this case is stored in, over the defaults. */
  readonly config?: Partial<CacheConfig>
  readonly value: unknown
  /** The uncompressed bytes: what raw file I/O and plain LZ4 are measured on. */
  readonly raw: Uint8Array
  readonly width: number
  readonly logical: number
}

const measure = async (directory: string, cases: ReadonlyArray<Case>) => {
  const rows: Array<Array<string>> = [[
    "value",
    "raw MiB",
    "file write MB/s",
    "new files MB/s",
    "file read MB/s",
    "put MB/s",
    "get MB/s",
    "encode MB/s",
    "decode MB/s",
    "put/write",
    "get/read",
    "stored/raw",
    "LZ4 only",
    "shuffle+LZ4",
    "stored/logical",
    "peak RSS MiB"
  ]]
  for (const [n, c] of cases.entries()) {
    const cacheDir = path.join(directory, `cache-${n}`)
    const layer = Cache.layer({ directory: cacheDir, maxSize: null, cleanupOnOpen: false, ...c.config })
    await Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const file = path.join(directory, "raw.bin")
      const write = best(3, () => fs.writeFileSync(file, c.raw))
      const read = best(3, () => fs.readFileSync(file))
      fs.rmSync(file)
      // What a cache does: a new file per value. Once the kernel's dirty-page limit is reached,
      // writes run at the disk's writeback rate, which rewriting one file never meets.
      const fresh: Array<number> = []
      for (let i = 0; i < 5; i++) {
        const start = now()
        fs.writeFileSync(path.join(directory, `new-${i}.bin`), c.raw)
        fresh.push(now() - start)
      }
      for (let i = 0; i < 5; i++) fs.rmSync(path.join(directory, `new-${i}.bin`))
      const newFiles = fresh.sort((a, b) => a - b)[2]!
      const plain = Lz4Napi.compressSync(Buffer.from(c.raw.buffer, c.raw.byteOffset, c.raw.byteLength)).byteLength
      const shuffled = new Uint8Array(c.raw.byteLength)
      shuffle(c.raw, shuffled, c.width)
      const blosc = Lz4Napi.compressSync(Buffer.from(shuffled.buffer)).byteLength
      let put = Infinity
      let get = Infinity
      for (let i = 0; i < 5; i++) {
        const key = { bench: c.name, i }
        let start = now()
        yield* cache.put(key, c.value)
        put = Math.min(put, now() - start)
        start = now()
        const back = yield* cache.get(key)
        get = Math.min(get, now() - start)
        if (back._tag !== "Some") throw new Error(`${c.name}: missed`)
      }
      // The codec alone, in memory (shuffle + compress into a pooled buffer; decompress +
      // unshuffle into new memory): no file, metadata or checksum. put/write cannot exceed
      // write/encode, nor get/read read/decode, however fast the rest becomes.
      const codec = CodecDefault.make({ tables: c.config?.tables })
      let encode = Infinity
      let decode = Infinity
      for (let i = 0; i < 3; i++) {
        let start = now()
        const encoded = yield* codec.encode(c.value)
        encode = Math.min(encode, now() - start)
        start = now()
        yield* codec.decode(encoded.bytes)
        decode = Math.min(decode, now() - start)
        BufferPool.give(encoded.bytes)
      }
      const entry = (yield* cache.list()).find((e) => (e.params as any)?.bench === c.name)!
      rows.push([
        c.name,
        fmt(c.raw.byteLength / MiB),
        fmt(mbps(c.raw.byteLength, write), 0),
        fmt(mbps(c.raw.byteLength, newFiles), 0),
        fmt(mbps(c.raw.byteLength, read), 0),
        fmt(mbps(c.raw.byteLength, put), 0),
        fmt(mbps(c.raw.byteLength, get), 0),
        fmt(mbps(c.raw.byteLength, encode), 0),
        fmt(mbps(c.raw.byteLength, decode), 0),
        fmt(write / put, 2),
        fmt(read / get, 2),
        fmt(entry.storedBytes / c.raw.byteLength, 3),
        fmt(plain / c.raw.byteLength, 3),
        fmt(blosc / c.raw.byteLength, 3),
        fmt(entry.storedBytes / c.logical, 3),
        fmt(peakRss(), 0)
      ])
    }).pipe(Effect.provide(layer), Effect.scoped, Effect.runPromise)
    fs.rmSync(cacheDir, { recursive: true, force: true })
  }
  table(
    "Storage formats through Cache.layer (files + SQLite); MB/s of raw bytes; file write = best of 3 rewriting one " +
      "file, new files = median of 5 new files (what a cache does); encode/decode = the codec alone in memory; ratios in one run " +
      "(targets: put/write ≥ 0.5, get/read ≥ 0.9 for arrays; stored/raw ≤ shuffle+LZ4; table put ≥ 220, get ≥ 370 MB/s " +
      "and stored/logical ≤ 0.7, python-diskcache pickling pandas as measured in MEASURED.md)",
    rows
  )
}

/**
 * The road not taken for `tables: "parquet"`: DuckDB (already a dependency) has no Arrow extension
 * offline, so the table goes in through an appender, out with `COPY … TO` a Parquet file, and back
 * with `read_parquet` into Arrow vectors. No checksum or metadata row here — a lower bound on what
 * a DuckDB-based format would cost — and it still returns plain utf8 and loses Arrow metadata.
 */
const duckdbParquet = async (directory: string, arrow: Arrow.Table, ipcBytes: number, logical: number) => {
  const instance = await DuckDBInstance.create(":memory:")
  const connection = await instance.connect()
  const file = path.join(directory, "duckdb.parquet")
  const id = arrow.getChild("id")!.toArray() as BigInt64Array
  const value = arrow.getChild("value")!.toArray() as Float64Array
  const category = arrow.getChild("category")!
  let put = Infinity
  let get = Infinity
  for (let i = 0; i < 3; i++) {
    let start = now()
    await connection.run("CREATE OR REPLACE TABLE t (id BIGINT, value DOUBLE, category VARCHAR)")
    const appender = await connection.createAppender("t")
    for (let at = 0; at < arrow.numRows; at += 2048) {
      const n = Math.min(2048, arrow.numRows - at)
      const chunk = DuckDBDataChunk.create([BIGINT, DOUBLE, VARCHAR], n)
      chunk.setColumns([
        Array.from(id.subarray(at, at + n)),
        Array.from(value.subarray(at, at + n)),
        Array.from({ length: n }, (_, j) => category.get(at + j) as string)
      ])
      appender.appendDataChunk(chunk)
    }
    appender.closeSync()
    await connection.run(`COPY t TO '${file}' (FORMAT parquet, COMPRESSION lz4_raw)`)
    put = Math.min(put, now() - start)
    start = now()
    const reader = await connection.runAndReadAll(`SELECT * FROM read_parquet('${file}')`)
    const columns = reader.getColumns()
    const back = new Arrow.Table({
      id: Arrow.makeVector(BigInt64Array.from(columns[0] as Array<bigint>)),
      value: Arrow.makeVector(Float64Array.from(columns[1] as Array<number>)),
      category: Arrow.vectorFromArray(columns[2] as Array<string>, new Arrow.Utf8())
    })
    get = Math.min(get, now() - start)
    if (back.numRows !== arrow.numRows) throw new Error("duckdb: rows lost")
  }
  const stored = fs.statSync(file).size
  connection.closeSync()
  table("Parquet through DuckDB instead (appender + COPY; not used): MB/s of the same IPC bytes", [
    ["value", "put MB/s", "get MB/s", "stored/raw", "stored/logical"],
    [
      "Arrow 1M rows (DuckDB Parquet)",
      fmt(mbps(ipcBytes, put), 0),
      fmt(mbps(ipcBytes, get), 0),
      fmt(stored / ipcBytes, 3),
      fmt(stored / logical, 3)
    ]
  ])
}

const median3 = (samples: Array<number>) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!

interface PeerArray {
  readonly raw: number
  /** Seconds, median of 3. */
  readonly put: number
  readonly get: number
  readonly stored: number
}

interface PeerTable {
  readonly logical: number
  readonly put: number
  readonly get: number
  readonly stored: number
}

/** This thread's CPU time in ms (Linux), else NaN. */
const threadCpu = (): number => {
  try {
    return Number(fs.readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]) / 1e6
  } catch {
    return NaN
  }
}

/** The middle sample (the upper one of an even count). */
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!

/** This thread's CPU ms spent in `f`. */
const cpuOf = (f: () => void) => {
  const start = threadCpu()
  f()
  return threadCpu() - start
}

/**
 * Issue 21's arrays: the floor of a get on this machine. The work a get cannot skip — fault in
 * the fresh result the caller keeps, read the stored bytes, checksum them, decode them — measured
 * as this thread's CPU, step by step (medians of 3, steps interleaved), and spread over the cores
 * as if perfectly split; beside it diskcache's whole get, which is one read of the raw bytes into
 * fresh memory (a `readFileSync` here). Their quotient is the best get ÷ diskcache reachable.
 */
export const arrayFloor = async (
  directory: string,
  arrays: ReadonlyArray<readonly [string, Float64Array | Int32Array, number]>
) => {
  const hasher = await Effect.runPromise(Xxhash.make())
  const cores = os.availableParallelism?.() ?? os.cpus().length
  const rows: Array<Array<string>> = [[
    "value",
    "fault result",
    "read stored",
    "checksum",
    "decode",
    "sum, CPU ms",
    `floor over ${cores} cores, ms`,
    "floor MB/s",
    "diskcache's read into fresh memory, CPU ms",
    "best get ÷ diskcache"
  ]]
  for (const codec of ["lz4", "none"] as const) {
    for (const [name, value, width] of arrays) {
      const raw = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
      const out = new Blocks.Writer(new Uint8Array(Blocks.bound(raw.byteLength)).fill(0), 0)
      Blocks.write(out, raw, width, {
        spec: Compression.byName[codec],
        level: undefined,
        shuffle: true,
        minSize: Compression.defaults.minSize,
        minSavings: Compression.defaults.minSavings
      })
      const stored = out.bytes.subarray(0, out.offset)
      const storedFile = path.join(directory, "floor-stored.bin")
      const rawFile = path.join(directory, "floor-raw.bin")
      fs.writeFileSync(storedFile, stored)
      fs.writeFileSync(rawFile, raw)
      const touchedIn = new Uint8Array(stored.byteLength).fill(0)
      const touchedOut = new Uint8Array(raw.byteLength).fill(0)
      const steps = [
        () => void new Uint8Array(raw.byteLength).fill(1),
        () => readInto(storedFile, touchedIn),
        () => void hasher.hashBytes(stored),
        () => Blocks.read(new Blocks.Reader(stored, 0), touchedOut),
        () => void fs.readFileSync(rawFile)
      ]
      const cpu = steps.map(() => [] as Array<number>)
      for (let round = 0; round < 3; round++) {
        for (const [s, step] of steps.entries()) {
          // A pause, as between two gets: the previous step's memory is returned first.
          await new Promise((resolve) => setTimeout(resolve, 50))
          cpu[s]!.push(cpuOf(step))
        }
      }
      const [fault, read, hash, decode, fresh] = cpu.map(median) as [number, number, number, number, number]
      const sum = fault + read + hash + decode
      const floor = sum / cores
      rows.push([
        `64 MiB ${name}${codec === "none" ? ", none" : ""}`,
        fmt(fault),
        fmt(read),
        fmt(hash),
        fmt(decode),
        fmt(sum),
        fmt(floor),
        fmt(mbps(raw.byteLength, floor), 0),
        fmt(fresh),
        `${fmt(fresh / floor, 2)}×`
      ])
      fs.rmSync(storedFile)
      fs.rmSync(rawFile)
    }
  }
  table(
    "Issue 21: arrays, the floor of a get on this machine — the CPU it cannot skip (fault the fresh result, read the " +
      "stored bytes, checksum, decode), this thread's CPU ms, medians of 3, spread over the cores; beside python-diskcache's " +
      "whole get, one read into fresh memory",
    rows
  )
}

/**
 * Issue 21's `compression: "none"` put: its floor on this machine. What such a put cannot skip —
 * copy the caller's array (the stored value is the array as it was when the put was called, and
 * the caller may change it once the put waits), checksum the copy, write it to a new file — as this
 * thread's CPU, step by step (medians of 5, steps interleaved; the file write's CPU is the kernel
 * copying into the page cache), spread over the cores as if perfectly split. Beside it, the copy
 * and checksum fused as the put runs them (1 MiB pieces, each hashed while in cache) and the
 * write's wall time alone: the put fills on this thread while the threadpool writes what is
 * filled, so it is at best the longer of the two.
 */
export const nonePutFloor = async (
  directory: string,
  arrays: ReadonlyArray<readonly [string, Float64Array | Int32Array, number]>
) => {
  const hasher = await Effect.runPromise(Xxhash.make())
  const cores = os.availableParallelism?.() ?? os.cpus().length
  const rows: Array<Array<string>> = [[
    "value",
    "copy, CPU ms",
    "checksum",
    "write file",
    `sum over ${cores} cores, ms`,
    "copy + checksum fused",
    "write alone, wall ms",
    "floor put ÷ fs write (CPU)",
    "floor put ÷ fs write (fused ‖ write)"
  ]]
  const file = path.join(directory, "none-floor.bin")
  const fresh = () => fs.rmSync(file, { force: true })
  const wallOf = async (f: () => Promise<unknown>) => {
    const start = now()
    await f()
    return now() - start
  }
  const writeAsync = (bytes: Uint8Array) =>
    new Promise<void>((resolve, reject) => fs.writeFile(file, bytes, (e) => (e ? reject(e) : resolve())))
  const fused = (raw: Uint8Array, copy: Uint8Array) => {
    const stream = hasher.hashStream!()
    for (let at = 0; at < raw.byteLength; at += Blocks.FILL_PIECE) {
      const end = Math.min(raw.byteLength, at + Blocks.FILL_PIECE)
      copy.set(raw.subarray(at, end), at)
      stream.update(copy.subarray(at, end))
    }
    stream.digest()
  }
  for (const [name, value] of arrays) {
    const raw = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    const copy = new Uint8Array(raw.byteLength).fill(0)
    const samples = Array.from({ length: 5 }, () => [] as Array<number>)
    for (let round = 0; round < 5; round++) {
      const pause = () => new Promise((resolve) => setTimeout(resolve, 30))
      await pause()
      samples[0]!.push(cpuOf(() => copy.set(raw)))
      await pause()
      samples[1]!.push(cpuOf(() => void hasher.hashBytes(copy)))
      fresh()
      await pause()
      samples[2]!.push(cpuOf(() => fs.writeFileSync(file, copy)))
      await pause()
      samples[3]!.push(cpuOf(() => fused(raw, copy)))
      fresh()
      await pause()
      samples[4]!.push(await wallOf(() => writeAsync(copy)))
      fresh()
    }
    const [copied, hashed, written, both, alone] = samples.map(median) as [number, number, number, number, number]
    const floor = (copied + hashed + written) / cores
    rows.push([
      `64 MiB ${name}, none`,
      fmt(copied),
      fmt(hashed),
      fmt(written),
      fmt(floor),
      fmt(both),
      fmt(alone),
      `${fmt(written / Math.max(floor, written), 2)}×`,
      `${fmt(alone / Math.max(both, alone), 2)}×`
    ])
  }
  table(
    "Issue 21: the floor of a `compression: \"none\"` array put on this machine — the copy (the value as the put was " +
      "called), its checksum and the file write it cannot skip, this thread's CPU ms, medians of 5; the copy and checksum " +
      "fused as the put runs them, and the write's wall time alone. A put is at best the CPU floor (all three split " +
      "perfectly over the cores) and, as built, the longer of the fused copy (this thread) and the write (the threadpool) " +
      "(target ≥ 0.95× fs write)",
    rows
  )
}

/**
 * Issue 21's rows: cacheness through the Promise API beside python-diskcache and raw files, same
 * values, one fresh cache, the same key overwritten 3 times (as the peer does), medians of 3.
 */
/**
 * The floor under the table's get, in ms: what every get of it pays whatever the API around it —
 * the blob read (into a touched buffer, as the blob store reads into a pooled one), the XXH64
 * checksum verified on read, and the decode (segments into a result, `tableFromIPC`); the sum of
 * their medians of 7, interleaved, a short pause before each (bench/table-get-steps.ts has each
 * part and the rest of the get).
 */
const tableFloor = async (directory: string, arrow: Arrow.Table): Promise<number> => {
  const settings = { codec: "lz4", level: undefined, shuffle: true, minSize: 4096, minSavings: 0.1 } as const
  const payload = new Uint8Array(Effect.runSync(ArrowFormat.handler.encodeFramed!(arrow, settings, 0)).bytes)
  const file = path.join(directory, "table-floor.bin")
  fs.writeFileSync(file, payload)
  const into = Buffer.allocUnsafeSlow(payload.byteLength).fill(0)
  const hasher = await Effect.runPromise(Xxhash.make())
  const steps = [
    () => readInto(file, into),
    () => hasher.hashBytes(payload),
    () => ArrowFormat.handler.decodeSync!(payload, ArrowFormat.handler.version)
  ]
  const times = steps.map(() => [] as Array<number>)
  for (let round = 0; round < 7; round++) {
    for (let s = 0; s < steps.length; s++) {
      await new Promise((resolve) => setTimeout(resolve, 30))
      const start = now()
      steps[s]!()
      times[s]!.push(now() - start)
    }
  }
  fs.rmSync(file)
  return times.reduce((sum, ts) => sum + [...ts].sort((a, b) => a - b)[ts.length >> 1]!, 0)
}

/**
 * Issue 21's cell for one value through the Promise API: three rounds of a put and a get of the
 * same key, as the peer does; medians in seconds, and the stored size.
 */
const putGet3 = async (on: ReturnType<typeof cacheness>, name: string, value: unknown) => {
  const puts: Array<number> = []
  const gets: Array<number> = []
  // Opened before the clock starts, as diskcache's `Cache(directory)` is (the client opens on its
  // first call: ~60–140 ms here, which the first put would carry).
  await on.stats()
  for (let i = 0; i < 3; i++) {
    let start = now()
    await on.put({ peer: name }, value)
    puts.push(now() - start)
    start = now()
    const back = await on.get({ peer: name })
    gets.push(now() - start)
    if (back === undefined) throw new Error(`${name}: missed`)
  }
  const entry = (await on.list()).find((e) => (e.params as any)?.peer === name)!
  return { put: median3([...puts]) / 1000, get: median3([...gets]) / 1000, stored: entry.storedBytes, puts, gets }
}

/**
 * Issue 21's table cell in a process of its own, as the peer runs it (MEASURED.md: one process per
 * cell, fresh directory, medians of 3): the table built, three put/get rounds into a fresh cache,
 * then the get floor. Run by `versusDiskcache` as `formats.ts --table`; prints one JSON line.
 */
const tableCell = async () => {
  const directory = benchDir("formats-table")
  try {
    const { table: arrow, logical } = arrowTable(1_000_000)
    const on = cacheness({ directory: path.join(directory, "promise"), maxSize: null, cleanupOnOpen: false })
    const c = await putGet3(on, "table", arrow)
    await on.close()
    const floor = await tableFloor(directory, arrow)
    console.log(JSON.stringify({ ...c, floor, logical }))
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

const versusDiskcache = async (
  directory: string,
  arrays: ReadonlyArray<readonly [string, Float64Array | Int32Array, number]>
) => {
  const cache = cacheness({ directory: path.join(directory, "promise"), maxSize: null, cleanupOnOpen: false })
  // Arrays stored as they are (`compression: "none"`): targets ≥ 0.95× a raw file write and read.
  const plain = cacheness({
    directory: path.join(directory, "promise-none"),
    maxSize: null,
    cleanupOnOpen: false,
    compression: { byKind: { array: { codec: "none" } } }
  })
  const ours = (name: string, value: unknown, on = cache) => putGet3(on, name, value)
  const file = path.join(directory, "peer-raw.bin")
  /**
   * The raw file figures, medians of 3: `write` a new file where the old one was removed first
   * (the removal untimed: the "fs write"), `read` it back; and, for the rows beside a put
   * that overwrites, the file steps such a put takes (`swap`): the new bytes written to a temp
   * file, renamed to a name of their own, and the old file — written the same way before —
   * removed (`remove`: that unlink alone). `replace` is the other atomic overwrite: a new file
   * renamed over the old one. Not what a put does: on ext4 a rename over a file starts the new
   * file's writeback (`auto_da_alloc`), and the rename and a later unlink of that file wait for
   * it (5–50 ms here for 64 MiB, where unlinking a file written and renamed to its own name took
   * 3.1–3.7 ms).
   */
  const rawIo = (bytes: Uint8Array) => {
    const writes: Array<number> = []
    const reads: Array<number> = []
    const removals: Array<number> = []
    const swaps: Array<number> = []
    const replaces: Array<number> = []
    const temp = `${file}.new`
    /** `bytes` to a temp file renamed to `name`, as a blob is written. */
    const asBlob = (name: string) => {
      fs.writeFileSync(temp, bytes)
      fs.renameSync(temp, name)
    }
    for (let i = 0; i < 3; i++) {
      fs.rmSync(file, { force: true })
      let start = now()
      fs.writeFileSync(file, bytes)
      writes.push(now() - start)
      start = now()
      fs.readFileSync(file)
      reads.push(now() - start)
      start = now()
      fs.writeFileSync(temp, bytes)
      fs.renameSync(temp, file)
      replaces.push(now() - start)
      asBlob(`${file}.old`)
      start = now()
      asBlob(`${file}.next`)
      const removing = now()
      fs.rmSync(`${file}.old`)
      removals.push(now() - removing)
      swaps.push(now() - start)
      fs.rmSync(`${file}.next`)
    }
    fs.rmSync(file)
    return {
      write: median3(writes) / 1000,
      read: median3(reads) / 1000,
      remove: median3(removals) / 1000,
      swap: median3(swaps) / 1000,
      replace: median3(replaces) / 1000
    }
  }
  const peerArrays = diskcachePeer<Record<string, PeerArray>>("arrays", directory)
  const peerTable = diskcachePeer<PeerTable>("table", directory)
  const rows: Array<Array<string>> = [[
    "value",
    "put MB/s",
    "diskcache",
    "fs write",
    "get MB/s",
    "diskcache",
    "fs read",
    "stored/raw",
    "diskcache",
    "shuffle+LZ4",
    "put ratio (target ≥ 1.0× diskcache)",
    "get ratio (target ≥ 1.0× diskcache, ≥ 0.9× fs read; none: ≥ 0.95× fs read)"
  ]]
  const total = {
    raw: 0,
    put: 0,
    get: 0,
    stored: 0,
    write: 0,
    read: 0,
    blosc: 0,
    peerPut: 0,
    peerGet: 0,
    peerStored: 0
  }
  const mb = (bytes: number, seconds: number | undefined) => (seconds === undefined ? undefined : bytes / 1e6 / seconds)
  const arrayRow = (
    name: string,
    raw: number,
    c: { put: number; get: number; stored: number },
    io: { write: number; read: number },
    blosc: number,
    peer: Omit<PeerArray, "raw"> | undefined
  ) => [
    name,
    fmt(mb(raw, c.put), 0),
    fmt(mb(raw, peer?.put), 0),
    fmt(mb(raw, io.write), 0),
    fmt(mb(raw, c.get), 0),
    fmt(mb(raw, peer?.get), 0),
    fmt(mb(raw, io.read), 0),
    fmt(c.stored / raw, 3),
    fmt(peer && peer.stored / raw, 3),
    fmt(blosc / raw, 3),
    `${ratio(mb(raw, c.put), mb(raw, peer?.put), "diskcache")}, ${
      ratio(mb(raw, c.put), mb(raw, io.write), "fs write")
    }`,
    `${ratio(mb(raw, c.get), mb(raw, peer?.get), "diskcache")}, ${ratio(mb(raw, c.get), mb(raw, io.read), "fs read")}`
  ]
  for (const [name, value, width] of arrays) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    const io = rawIo(bytes)
    const shuffled = new Uint8Array(bytes.byteLength)
    shuffle(bytes, shuffled, width)
    const blosc = Lz4Napi.compressSync(Buffer.from(shuffled.buffer)).byteLength
    const c = await ours(name, value)
    const peer = peerArrays?.[width === 8 ? "f64" : "i32"]
    rows.push(arrayRow(`64 MiB ${name}`, bytes.byteLength, c, io, blosc, peer))
    total.raw += bytes.byteLength
    total.put += c.put
    total.get += c.get
    total.stored += c.stored
    total.write += io.write
    total.read += io.read
    total.blosc += blosc
    total.peerPut += peer?.put ?? NaN
    total.peerGet += peer?.get ?? NaN
    total.peerStored += peer?.stored ?? NaN
  }
  const plainRows: Array<Array<string>> = []
  const replaceRows: Array<Array<string>> = [[
    "value",
    "put, ms",
    "put, no get before it",
    "fs write, ms (old file removed first, untimed)",
    "fs swap: write new + rename to its own name + rm old",
    "rm of the old file (in the swap)",
    "fs replace: write new + rename over old",
    "put ÷ fs write (target ≥ 0.95×, as MB/s)",
    "no-get put ÷ fs write",
    "put ÷ fs swap"
  ]]
  for (const [name, value] of arrays) {
    const bytes = new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    // Raw file figures measured again beside these, so each ratio compares one moment's machine.
    const io = rawIo(bytes)
    const c = await ours(`${name} none`, value, plain)
    // The same overwrite four times in a row with no get between, the last three timed. A get of
    // 64 MiB has the next result's memory faulted in beside it (BufferPool's spare), ~30 ms of the
    // kernel's CPU on the other core, which the put after it shares: the untimed first put here.
    await plain.put({ peer: `${name} none` }, value)
    const alone: Array<number> = []
    for (let i = 0; i < 3; i++) {
      const start = now()
      await plain.put({ peer: `${name} none` }, value)
      alone.push(now() - start)
    }
    const putAlone = median3(alone) / 1000
    const peer = peerArrays?.[value.BYTES_PER_ELEMENT === 8 ? "f64" : "i32"]
    plainRows.push(arrayRow(`64 MiB ${name}, none`, bytes.byteLength, c, io, NaN, peer))
    const speed = (seconds: number, put = c.put) => `${fmt(seconds / put, 2)}×`
    replaceRows.push([
      `64 MiB ${name}, none`,
      fmt(c.put * 1000),
      fmt(putAlone * 1000),
      fmt(io.write * 1000),
      fmt(io.swap * 1000),
      fmt(io.remove * 1000),
      fmt(io.replace * 1000),
      speed(io.write),
      speed(io.write, putAlone),
      speed(io.swap)
    ])
  }
  rows.push(arrayRow(
    "both arrays",
    total.raw,
    total,
    total,
    total.blosc,
    peerArrays === undefined ? undefined : { put: total.peerPut, get: total.peerGet, stored: total.peerStored }
  ))
  rows.push(...plainRows)
  table(
    "Issue 21: arrays through the Promise API beside python-diskcache (numpy arrays) and raw files; MB/s of raw bytes, " +
      "medians of 3 (stored/raw target: ≤ shuffle+LZ4)",
    rows
  )
  table(
    "Issue 21: the `none` put above (the same key overwritten after a get, medians of 3), and three such puts in a " +
      "row after an untimed one, no get between, beside the raw file operations they stand for: the issue's fs " +
      "write (a new file where the old one was removed first, the removal untimed), the swap a put makes (the new " +
      "file beside the old, under its own name, then the old removed: readers of the old value keep it whole), and " +
      "a rename over the old file (ratios as speeds: above 1× the put is faster)",
    replaceRows
  )
  await arrayFloor(directory, arrays)
  await nonePutFloor(directory, arrays)
  let tableRow: Array<string>
  try {
    // In a fresh process, like the peer's cell: here it would follow 64 MiB arrays and their garbage.
    const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--table"], {
      encoding: "utf8",
      maxBuffer: 1 << 20
    })
    const line = child.stdout.trim().split("\n").pop() ?? ""
    if (child.status !== 0 || !line.startsWith("{")) {
      throw new Error(`table child failed: ${child.stderr.trim().split("\n").pop() ?? child.status}`)
    }
    const c = JSON.parse(line) as {
      put: number
      get: number
      stored: number
      floor: number
      logical: number
      puts: Array<number>
      gets: Array<number>
    }
    const { floor, logical } = c
    console.log(
      `table cell (fresh process), ms, in the order they ran: puts ${c.puts.map((t) => fmt(t)).join(" / ")}, gets ${
        c.gets.map((t) => fmt(t)).join(" / ")
      }`
    )
    tableRow = [
      "1M rows (Arrow, default settings)",
      fmt(mb(logical, c.put), 0),
      fmt(mb(logical, peerTable?.put), 0),
      fmt(mb(logical, c.get), 0),
      fmt(mb(logical, peerTable?.get), 0),
      fmt(mb(logical, floor / 1000), 0),
      fmt(c.stored / 1e6),
      fmt(peerTable && peerTable.stored / 1e6),
      `put ${ratio(mb(logical, c.put), mb(logical, peerTable?.put), "diskcache")}, get ${
        ratio(mb(logical, c.get), mb(logical, peerTable?.get), "diskcache")
      } (floor ${ratio(mb(logical, floor / 1000), mb(logical, peerTable?.get), "diskcache")}), stored ${
        ratio(c.stored, peerTable?.stored, "diskcache")
      }`
    ]
  } catch (error) {
    const reason = `fails: ${String(error).split("\n")[0]!.slice(0, 80)}`
    const logical = peerTable?.logical ?? NaN
    tableRow = [
      "1M rows (Arrow, default settings)",
      reason,
      fmt(mb(logical, peerTable?.put), 0),
      "",
      fmt(mb(logical, peerTable?.get), 0),
      "",
      "",
      fmt(peerTable && peerTable.stored / 1e6),
      ""
    ]
  }
  await cache.close()
  await plain.close()
  table(
    "Issue 21: 1M-row table (int64, float64, dictionary utf8 of 50 values) through the Promise API beside python-diskcache " +
      "pickling the same pandas DataFrame (categorical); MB/s of the logical bytes, medians of 3 " +
      "(targets: put and get ≥ 1.0×, stored ≤ 1.0× diskcache); get floor: blob read + checksum + decode, no API",
    [
      ["value", "put MB/s", "diskcache", "get MB/s", "diskcache", "get floor MB/s", "stored MB", "diskcache", "ratios"],
      tableRow
    ]
  )
}

/**
 * Peak RSS of this process image in MiB. Linux carries `getrusage`'s maxrss across `exec`, so a
 * child spawned by a large parent would report the parent's peak; VmHWM belongs to this image only.
 */
const peakRss = (): number => {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(fs.readFileSync("/proc/self/status", "utf8"))
    if (match !== null) return Number(match[1]) / 1024
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024
}

/** Child process: put and get one 256 MiB array; prints peak RSS beside the value's size. */
const large = async () => {
  const directory = benchDir("formats-large")
  const value = smoothSignal(256 * MiB)
  const baseline = peakRss()
  const layer = Cache.layer({ directory, maxSize: null, cleanupOnOpen: false })
  let put = 0
  let get = 0
  let peakAfterPut = 0
  await Effect.gen(function*() {
    const cache = yield* Cache.Cache
    let start = now()
    yield* cache.put({ large: 1 }, value)
    put = now() - start
    peakAfterPut = peakRss()
    start = now()
    yield* cache.get({ large: 1 })
    get = now() - start
  }).pipe(Effect.provide(layer), Effect.scoped, Effect.runPromise)
  const peak = peakRss()
  fs.rmSync(directory, { recursive: true, force: true })
  console.log(JSON.stringify({ baseline, peakAfterPut, peak, put: mbps(256 * MiB, put), get: mbps(256 * MiB, get) }))
}

/**
 * Issue 21's array gets when nothing is warm: the first get of a value right after its put (no
 * earlier get of that size, so no result spare) and a get after the process sat idle past
 * `BufferPool.IDLE_MS` (the pooled read buffer and the result spares dropped): what a program
 * that reads a cached array now and then sees. Beside a raw `readFileSync` of the same bytes
 * after the same pause. Each row's gets come from one fresh cache; means of 2.
 */
export const coldGets = async (directory: string, value: Float64Array): Promise<void> => {
  const IDLE = BufferPool.IDLE_MS + 500
  const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
  const file = path.join(directory, "cold-raw.bin")
  fs.writeFileSync(file, new Uint8Array(value.buffer, value.byteOffset, value.byteLength))
  const rows: Array<Array<string>> = [[
    "64 MiB Float64Array smooth",
    "first get after its put, ms",
    `get after ${IDLE / 1000} s idle`,
    "raw read after the same idle",
    "raw async read (fs.promises.readFile) after it",
    "first get ÷ raw (as speeds)",
    "idle get ÷ raw (target ≥ 0.9×, none ≥ 0.95×)",
    "idle get ÷ raw async"
  ]]
  for (const codec of ["lz4", "none"] as const) {
    const firsts: Array<number> = []
    const idles: Array<number> = []
    const raws: Array<number> = []
    const asyncRaws: Array<number> = []
    for (let round = 0; round < 2; round++) {
      const cache = cacheness({
        directory: path.join(directory, `cold-${codec}-${round}`),
        maxSize: null,
        cleanupOnOpen: false,
        compression: { byKind: { array: { codec } } }
      })
      await cache.put({ cold: codec }, value)
      let start = now()
      await cache.get({ cold: codec })
      firsts.push(now() - start)
      await pause(IDLE)
      start = now()
      fs.readFileSync(file)
      raws.push(now() - start)
      await pause(IDLE)
      // Node's own read off the event loop: the memory it allocates is collected by V8 while the
      // read runs, as the get's result is, where `readFileSync` returns before any collection.
      start = now()
      await fs.promises.readFile(file)
      asyncRaws.push(now() - start)
      await pause(IDLE)
      start = now()
      if ((await cache.get({ cold: codec })) === undefined) throw new Error(`cold ${codec}: missed`)
      idles.push(now() - start)
      await cache.close()
    }
    const [first, idle, raw, asyncRaw] = [firsts, idles, raws, asyncRaws].map((xs) =>
      xs.reduce((a, b) => a + b) / xs.length
    ) as [number, number, number, number]
    rows.push([
      codec === "none" ? "none" : "lz4 (default)",
      fmt(first),
      fmt(idle),
      fmt(raw),
      fmt(asyncRaw),
      `${fmt(raw / first, 2)}×`,
      `${fmt(raw / idle, 2)}×`,
      `${fmt(asyncRaw / idle, 2)}×`
    ])
  }
  fs.rmSync(file)
  table(
    `Issue 21: array gets with nothing warm — the first get of a value after its put, and a get after the process ` +
      `sat idle ${IDLE / 1000} s (BufferPool drops its buffers after ${BufferPool.IDLE_MS / 1000} s), beside a raw ` +
      `readFileSync and a raw fs.promises.readFile after the same pause; means of 2, each from a fresh cache`,
    rows
  )
}

export const run = async (): Promise<void> => {
  console.log("\n## formats")
  shuffleTable()
  const directory = benchDir("formats")
  try {
    const signal = smoothSignal(64 * MiB)
    const ramp = ascending(64 * MiB)
    const { table: arrow, logical } = arrowTable(1_000_000)
    const ipc = Arrow.tableToIPC(arrow, "stream")
    await measure(directory, [
      {
        name: "Float64Array smooth",
        value: signal,
        raw: new Uint8Array(signal.buffer),
        width: 8,
        logical: signal.byteLength
      },
      {
        name: "Int32Array ascending",
        value: ramp,
        raw: new Uint8Array(ramp.buffer),
        width: 4,
        logical: ramp.byteLength
      },
      { name: "Arrow 1M rows (IPC)", value: arrow, raw: ipc, width: 8, logical },
      { name: "Arrow 1M rows (Parquet)", config: { tables: "parquet" }, value: arrow, raw: ipc, width: 8, logical }
    ])
    await duckdbParquet(directory, arrow, ipc.byteLength, logical)
    await versusDiskcache(
      directory,
      [["Float64Array smooth", signal, 8], ["Int32Array ascending", ramp, 4]]
    )
    await coldGets(directory, signal)
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), "--large"], {
    encoding: "utf8",
    maxBuffer: 1 << 20
  })
  const line = child.stdout.trim().split("\n").pop() ?? ""
  try {
    const r = JSON.parse(line)
    table("256 MiB Float64Array in a fresh process (peak RSS, MiB)", [
      ["value MiB", "RSS with value", "peak after put", "peak after get", "put MB/s", "get MB/s"],
      ["256", fmt(r.baseline, 0), fmt(r.peakAfterPut, 0), fmt(r.peak, 0), fmt(r.put, 0), fmt(r.get, 0)]
    ])
  } catch {
    console.log(`large-value child failed: ${child.stderr.slice(-2000)}`)
  }
}

if (isMain(import.meta.url)) {
  if (process.argv.includes("--large")) await large()
  else if (process.argv.includes("--table")) await tableCell()
  else await run()
}
