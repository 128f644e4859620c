/**
 * Path keys: hashing a directory of 1,000 files totalling 512 MiB (generated here, removed after)
 * as `Key.dir(root)`, beside `cat`-style raw reads of the same files.
 *
 * - cold: the first hash (no fingerprints yet; SQLite fingerprint store, as `Cache.layer` has it)
 * - warm: the same tree again: a directory walk, a stat and a fingerprint lookup per file
 * - sequential vs parallel: fingerprints off, one file at a time vs the default 8 in flight
 * Each is measured twice: with the files in the OS page cache, and "from disk", after dropping
 * the files' pages with posix_fadvise(DONTNEED) (only these files; nothing global).
 * The generated files get an mtime an hour ago, like a dataset written earlier: files modified in
 * the last 2 seconds get no fingerprint (see docs/PATH_KEYS.md).
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import { execFileSync, spawnSync } from "node:child_process"
import { randomBytes } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as Key from "../src/key/pathKey.js"
import { Hasher, PathFingerprints } from "../src/key/service.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import { MetadataStore } from "../src/metadata/service.js"
import * as MetadataStoreSqlite from "../src/metadata/sqlite.js"
import { benchDir, fmt, isMain, now, table } from "./support.js"

const FILES = 1_000
const TOTAL = 512 * 1024 * 1024
const MiB = 1024 * 1024

/** 1,000 files in 20 directories, sizes spread 16 KiB – ~1 MiB, summing to exactly 512 MiB. */
const generate = (root: string): Array<string> => {
  const block = randomBytes(2 * MiB)
  let seed = 42
  const random = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648
  const weights = Array.from({ length: FILES }, () => 0.03 + random())
  const sum = weights.reduce((a, b) => a + b, 0)
  const sizes = weights.map((w) => Math.floor((w / sum) * TOTAL))
  sizes[0] += TOTAL - sizes.reduce((a, b) => a + b, 0)
  const old = new Date(Date.now() - 3_600_000)
  const files: Array<string> = []
  for (let i = 0; i < FILES; i++) {
    const dir = path.join(root, `part-${String(i % 20).padStart(2, "0")}`)
    fs.mkdirSync(dir, { recursive: true })
    const file = path.join(dir, `chunk-${String(i).padStart(4, "0")}.bin`)
    const offset = Math.floor(random() * MiB)
    const bytes = block.subarray(offset, offset + sizes[i])
    bytes.writeUInt32LE(i, 0) // every file distinct
    fs.writeFileSync(file, bytes)
    fs.utimesSync(file, old, old)
    files.push(file)
  }
  return files
}

/** Drops these files' pages from the OS cache: posix_fadvise(DONTNEED), which Node lacks, via python3. */
const dropCache = (files: ReadonlyArray<string>): boolean => {
  const script =
    "import os,sys\nfor p in sys.stdin.read().split('\\0'):\n  fd=os.open(p,os.O_RDONLY); os.fdatasync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED); os.close(fd)"
  const r = spawnSync("python3", ["-c", script], { input: files.join("\0"), stdio: ["pipe", "ignore", "pipe"] })
  return r.status === 0
}

/** `cat`-style: each file read sequentially through one 1 MiB buffer. */
const rawRead = (files: ReadonlyArray<string>): number => {
  const buffer = Buffer.allocUnsafe(MiB)
  const t = now()
  for (const file of files) {
    const fd = fs.openSync(file, "r")
    while (fs.readSync(fd, buffer, 0, MiB, null) > 0);
    fs.closeSync(fd)
  }
  return now() - t
}

/** The real `cat` over the same files, for reference. */
const catRead = (files: ReadonlyArray<string>): number => {
  const t = now()
  for (let i = 0; i < files.length; i += 200) {
    execFileSync("cat", files.slice(i, i + 200) as Array<string>, { stdio: ["ignore", "ignore", "ignore"] })
  }
  return now() - t
}

const fingerprintsFrom = Layer.effect(
  PathFingerprints,
  Effect.map(MetadataStore, (m) => ({ lookup: m.lookupFingerprints, save: m.saveFingerprints }))
)

const quiet = <A, E>(self: Effect.Effect<A, E>) => Effect.runPromise(Logger.withMinimumLogLevel(self, LogLevel.Warning))

/** Milliseconds to key `{ data: Key.dir(root) }` `times` times in one layer (first, second, ...). */
const timeKeys = (layer: Layer.Layer<Hasher, unknown>, root: string, times: number, before?: () => void) =>
  quiet(Effect.provide(
    Effect.gen(function*() {
      const hasher = yield* Hasher
      const out: Array<{ ms: number; key: string }> = []
      for (let i = 0; i < times; i++) {
        before?.()
        const t = now()
        const key = yield* hasher.key({ data: Key.dir(root) })
        out.push({ ms: now() - t, key })
      }
      return out
    }),
    layer
  ))

/** Files the last hash answered from fingerprints. */
let fromFingerprints = 0
const sqliteHasher = (filename: string) =>
  HasherXxhash.layerWith({ onProgress: (p) => (fromFingerprints = p.filesFromFingerprints) }).pipe(
    Layer.provide(fingerprintsFrom),
    Layer.provide(MetadataStoreSqlite.layer({ filename }))
  )

const median = (xs: ReadonlyArray<number>): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export const run = async (): Promise<void> => {
  const directory = benchDir("paths")
  try {
    const root = path.join(directory, "tree")
    const t = now()
    const files = generate(root)
    console.log(`\npaths: generated ${FILES} files, ${TOTAL / MiB} MiB in ${fmt((now() - t) / 1000, 1)} s`)
    const mbps = (ms: number) => TOTAL / MiB / (ms / 1000)

    // Warm the page cache, then take the best of three of each in-cache measurement.
    rawRead(files)
    const raw = Math.min(rawRead(files), rawRead(files), rawRead(files))
    const cat = Math.min(catRead(files), catRead(files))
    const sequential = HasherXxhash.layerWith({ fingerprints: false, parallelFiles: Number.MAX_SAFE_INTEGER })
    const parallel = HasherXxhash.layerWith({ fingerprints: false })
    const seq = Math.min(...(await timeKeys(sequential, root, 3)).map((r) => r.ms))
    const par = Math.min(...(await timeKeys(parallel, root, 3)).map((r) => r.ms))
    const [cold, ...warms] = await timeKeys(sqliteHasher(path.join(directory, "fp-cache.db")), root, 6)
    if (warms.some((w) => w.key !== cold.key)) throw new Error("warm key differs from cold key")
    if (fromFingerprints !== FILES) {
      throw new Error(`warm hash answered ${fromFingerprints} of ${FILES} files from fingerprints`)
    }
    const warmMs = median(warms.map((w) => w.ms))

    // From disk: each measurement starts with these files' pages dropped.
    const canDrop = dropCache(files)
    let diskRows: Array<Array<string>> = []
    if (canDrop) {
      const rawDisk = rawRead(files)
      dropCache(files)
      const [seqDisk] = await timeKeys(sequential, root, 1)
      dropCache(files)
      const [parDisk] = await timeKeys(parallel, root, 1)
      dropCache(files)
      const [coldDisk, ...warmsDisk] = await timeKeys(sqliteHasher(path.join(directory, "fp-disk.db")), root, 4)
      const warmDisk = { ms: median(warmsDisk.map((w) => w.ms)) }
      diskRows = [
        [
          "from disk (pages dropped)",
          fmt(mbps(rawDisk), 0),
          "—",
          fmt(mbps(seqDisk.ms), 0),
          fmt(mbps(parDisk.ms), 0),
          fmt(mbps(coldDisk.ms), 0),
          fmt(mbps(warmDisk.ms), 0),
          fmt(coldDisk.ms / warmDisk.ms, 1),
          fmt(parDisk.ms > 0 ? seqDisk.ms / parDisk.ms : NaN, 2),
          fmt(mbps(coldDisk.ms) / mbps(rawDisk), 2)
        ]
      ]
    }
    table(
      `paths: Key.dir over ${FILES} files, ${TOTAL / MiB} MiB — MB/s (MiB/s of file content; warm = fingerprints)`,
      [
        [
          "where the bytes are",
          "raw read",
          "cat",
          "sequential",
          "parallel",
          "cold",
          "warm",
          "warm/cold ×",
          "parallel speed-up ×",
          "cold / raw"
        ],
        [
          "OS page cache",
          fmt(mbps(raw), 0),
          fmt(mbps(cat), 0),
          fmt(mbps(seq), 0),
          fmt(mbps(par), 0),
          fmt(mbps(cold.ms), 0),
          fmt(mbps(warmMs), 0),
          fmt(cold.ms / warmMs, 1),
          fmt(seq / par, 2),
          fmt(mbps(cold.ms) / mbps(raw), 2)
        ],
        ...diskRows,
        ["target", "", "", "", "", "≥ 0.8× raw", "", "≥ 20", "", "≥ 0.8"]
      ]
    )
    console.log(
      `  warm (median of 5): ${fmt(warmMs, 1)} ms for ${FILES} files (walk + stat + fingerprint lookup); cold ${
        fmt(cold.ms, 0)
      } ms; ` +
        `load average ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores` +
        (canDrop ? "" : "; from-disk rows skipped: python3 posix_fadvise unavailable")
    )
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

if (isMain(import.meta.url)) await run()
