/** Shared helpers of the benchmarks: timing, percentiles, tables. */
import * as Arrow from "apache-arrow"
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

export const now = (): number => performance.now()

export const percentile = (samples: ReadonlyArray<number>, p: number): number => {
  const sorted = [...samples].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

export const fmt = (n: number | undefined, digits = 1): string =>
  n === undefined || Number.isNaN(n) ? "—" : n >= 10_000 ? Math.round(n).toLocaleString("en-US") : n.toFixed(digits)

/** Prints an aligned table: the first row is the header. */
export const table = (title: string, rows: ReadonlyArray<ReadonlyArray<string>>): void => {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)))
  console.log(`\n${title}`)
  rows.forEach((row, i) => {
    console.log(row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  "))
    if (i === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "))
  })
}

export const benchDir = (name: string): string => fs.mkdtempSync(path.join(os.tmpdir(), `cacheness-bench-${name}-`))

export const isMain = (url: string): boolean =>
  process.argv[1] !== undefined && path.resolve(process.argv[1]) === new URL(url).pathname

const PEER_SCRIPT = fileURLToPath(new URL("./peer/diskcache_bench.py", import.meta.url))

/** Debian's python3 (which has python3-diskcache, -numpy, -pandas); the PATH one otherwise. */
const python = (): string => (fs.existsSync("/usr/bin/python3") ? "/usr/bin/python3" : "python3")

/**
 * Runs one workload of `bench/peer/diskcache_bench.py` in a fresh subdirectory of `directory` and
 * returns its JSON result, or `undefined` after printing "python-diskcache peer skipped: …" when
 * Python, diskcache or a package the workload needs is absent (or the script failed).
 */
export const diskcachePeer = <A>(
  workload: string,
  directory: string,
  args: ReadonlyArray<string> = []
): A | undefined => {
  const dir = fs.mkdtempSync(path.join(directory, `diskcache-${workload}-`))
  try {
    const r = spawnSync(python(), [PEER_SCRIPT, workload, dir, ...args], { encoding: "utf8", maxBuffer: 16 << 20 })
    if (r.error !== undefined) {
      console.log(`python-diskcache peer skipped: ${python()} not runnable (${r.error.message})`)
      return undefined
    }
    if (r.status !== 0) {
      const reason = r.stderr.trim().split("\n").pop() ?? `exit status ${r.status}`
      console.log(`python-diskcache peer skipped: ${workload}: ${reason}`)
      return undefined
    }
    return (JSON.parse(r.stdout.trim().split("\n").pop()!) as { result: A }).result
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

/** "0.19× diskcache": `ours ÷ theirs`, or "—" when either side is missing. */
export const ratio = (ours: number | undefined, theirs: number | undefined, what: string): string =>
  ours === undefined || theirs === undefined ? `— ${what}` : `${fmt(ours / theirs, 2)}× ${what}`

/** The key of the i-th entry of the small-object workload (MEASURED.md's, shared by every suite). */
export const keyOf = (i: number) => ({ user: i, region: "eu-west", version: 3 })

/** The i-th value of the small-object workload: a JSON object of about 150 bytes. */
export const valueOf = (i: number) => ({
  id: i,
  name: `user-${i}`,
  email: `user${i}@example.com`,
  tags: ["alpha", "beta", "gamma"],
  score: i / 7,
  active: i % 2 === 0,
  created: "2024-01-01T00:00:00Z"
})

/**
 * The 1M-row table of issue 21 (int64 id, float64 value, dictionary utf8 of 50 values), and its
 * logical size: the columns as plain values (8 + 8 bytes, the category's UTF-8 and a 4-byte offset).
 */
export const arrowTable = (rows: number) => {
  const id = new BigInt64Array(rows)
  const value = new Float64Array(rows)
  const indices = new Int32Array(rows)
  for (let i = 0; i < rows; i++) {
    id[i] = BigInt(i)
    value[i] = Math.random() * 1000
    indices[i] = Math.floor(Math.random() * 50)
  }
  const names = Array.from({ length: 50 }, (_, i) => `category_${i}`)
  const dictionary = Arrow.vectorFromArray(names, new Arrow.Utf8())
  const type = new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int32())
  const table = new Arrow.Table({
    id: Arrow.makeVector(id),
    value: Arrow.makeVector(value),
    category: Arrow.makeVector(Arrow.makeData({ type, length: rows, data: indices, dictionary }))
  })
  // Logical size: the columns as plain values (8 + 8 bytes, the category's UTF-8 and a 4-byte offset).
  let logical = 20 * rows
  for (let i = 0; i < rows; i++) logical += names[indices[i]!]!.length
  return { table, logical }
}

/** `file` read whole into `into` (memory already touched), as the blob store reads a blob. */
export const readInto = (file: string, into: Uint8Array): void => {
  const fd = fs.openSync(file, "r")
  const size = fs.fstatSync(fd).size
  let filled = 0
  while (filled < size) filled += fs.readSync(fd, into, filled, size - filled, filled)
  fs.closeSync(fd)
}
