/** Shared helpers of the benchmarks: timing, percentiles, tables. */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"

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

export const isMain = (url: string): boolean => process.argv[1] !== undefined && path.resolve(process.argv[1]) === new URL(url).pathname
