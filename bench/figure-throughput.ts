/**
 * Figure for the docs: get and put throughput against value size (4 KiB … 256 MiB, powers of 4)
 * for cacheness through the Promise API (the same bytes as a Float64Array and as a Uint8Array),
 * raw file write/read of those bytes (a new file per write, `readFileSync` into fresh memory) and
 * python-diskcache 5.4 storing a numpy float64 array (`bench/peer/diskcache_bench.py throughput`).
 * Medians of fewer repetitions as the size grows. Prints the table and writes a hand-written SVG
 * line chart (log x; MB/s on a log y, as the series span orders of magnitude) to
 * docs/figures/throughput-vs-size.svg.
 *
 * `npx tsx bench/figure-throughput.ts`
 */
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"
import { cacheness } from "../src/index.js"
import { benchDir, diskcachePeer, fmt, now, table } from "./support.js"

const KiB = 1024
const SIZES = Array.from({ length: 9 }, (_, i) => 4 * KiB * 4 ** i) // 4 KiB … 256 MiB
const repsOf = (
  size: number
) => (size <= 64 * KiB ? 31 : size <= 1024 * KiB ? 15 : size <= 16 * 1024 * KiB ? 5 : size <= 64 * 1024 * KiB ? 3 : 2)
const OUT = fileURLToPath(new URL("../docs/figures/throughput-vs-size.svg", import.meta.url))

const median = (samples: Array<number>) => samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!
const mbps = (bytes: number, ms: number) => bytes / 1e6 / (ms / 1000)
const label = (size: number) => (size >= 1024 * KiB ? `${size / 1024 / KiB} MiB` : `${size / KiB} KiB`)

const smoothSignal = (bytes: number) => {
  const out = new Float64Array(bytes / 8)
  for (let i = 0; i < out.length; i++) out[i] = Math.sin(i / 1000) * 100 + Math.random() * 1e-3
  return out
}

interface Point {
  readonly size: number
  readonly put: number
  readonly get: number
}

interface Series {
  readonly name: string
  readonly color: string
  readonly dash?: string
  readonly points: ReadonlyArray<Point>
}

const measure = async (directory: string) => {
  const cache = cacheness({ directory: path.join(directory, "cache"), maxSize: null, cleanupOnOpen: false })
  const f64: Array<Point> = []
  const u8: Array<Point> = []
  const files: Array<Point> = []
  const file = path.join(directory, "raw.bin")
  // Warm-up on a throwaway key, small and file-backed sizes, so the first point is not V8's JIT.
  for (const size of [4 * KiB, 256 * KiB]) {
    const value = smoothSignal(size)
    for (let i = 0; i < 30; i++) {
      for (const v of [value, new Uint8Array(value.buffer)]) {
        await cache.put({ warmup: true }, v)
        await cache.get({ warmup: true })
      }
    }
  }
  await cache.invalidate({ warmup: true })
  for (const size of SIZES) {
    const value = smoothSignal(size)
    const bytes = new Uint8Array(value.buffer)
    const reps = repsOf(size)
    for (const [out, v, name] of [[f64, value, "f64"], [u8, bytes, "u8"]] as const) {
      const puts: Array<number> = []
      const gets: Array<number> = []
      for (let i = 0; i < reps; i++) {
        let start = now()
        await cache.put({ size, name }, v)
        puts.push(now() - start)
        start = now()
        const back = await cache.get<ArrayLike<number>>({ size, name })
        gets.push(now() - start)
        if (back === undefined || back.length !== v.length) throw new Error(`${name} ${size}: missed`)
      }
      await cache.invalidate({ size, name })
      out.push({ size, put: mbps(size, median(puts)), get: mbps(size, median(gets)) })
    }
    const writes: Array<number> = []
    const reads: Array<number> = []
    for (let i = 0; i < reps; i++) {
      fs.rmSync(file, { force: true })
      let start = now()
      fs.writeFileSync(file, bytes)
      writes.push(now() - start)
      start = now()
      fs.readFileSync(file)
      reads.push(now() - start)
    }
    fs.rmSync(file)
    files.push({ size, put: mbps(size, median(writes)), get: mbps(size, median(reads)) })
    console.log(`${label(size)}: done (${reps} repetitions)`)
  }
  await cache.close()
  return { f64, u8, files }
}

const escape = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** Decades of MB/s around the data: the series span two to three orders of magnitude. */
const decades = (values: ReadonlyArray<number>) => {
  const low = Math.floor(Math.log10(Math.max(0.1, Math.min(...values))))
  const high = Math.ceil(Math.log10(Math.max(...values)))
  return { low, high: Math.max(high, low + 1) }
}

const svg = (series: ReadonlyArray<Series>, subtitle: string): string => {
  const width = 1020
  const height = 500
  const panel = { width: 400, height: 300, top: 90 }
  const lefts = [80, 560]
  const xs = (size: number, left: number) =>
    left + (Math.log(size / SIZES[0]!) / Math.log(SIZES[SIZES.length - 1]! / SIZES[0]!)) * panel.width
  const out: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${
      width / 2
    }" y="28" text-anchor="middle" font-size="17" font-weight="bold">cacheness put and get throughput vs value size</text>`,
    `<text x="${width / 2}" y="50" text-anchor="middle" font-size="11" fill="#555">${escape(subtitle)}</text>`
  ]
  for (const [p, which] of (["put", "get"] as const).entries()) {
    const left = lefts[p]!
    const bottom = panel.top + panel.height
    const { high, low } = decades(series.flatMap((s) => s.points.map((pt) => pt[which])))
    const ys = (v: number) => bottom - ((Math.log10(v) - low) / (high - low)) * panel.height
    out.push(
      `<text x="${left + panel.width / 2}" y="${
        panel.top - 12
      }" text-anchor="middle" font-size="14" font-weight="bold">${which}</text>`
    )
    for (let d = low; d <= high; d++) {
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** d
        if (d === high && m > 1) break
        const y = ys(v).toFixed(1)
        out.push(
          `<line x1="${left}" x2="${left + panel.width}" y1="${y}" y2="${y}" stroke="${
            m === 1 ? "#d0d0d0" : "#eeeeee"
          }"/>`
        )
        out.push(
          `<text x="${left - 6}" y="${(ys(v) + 4).toFixed(1)}" text-anchor="end"${
            m === 1 ? "" : ` font-size="9" fill="#888"`
          }>${v.toLocaleString("en-US")}</text>`
        )
      }
    }
    for (const size of SIZES) {
      const x = xs(size, left).toFixed(1)
      out.push(`<line x1="${x}" x2="${x}" y1="${panel.top}" y2="${bottom}" stroke="#f0f0f0"/>`)
      out.push(`<text x="${x}" y="${bottom + 16}" text-anchor="middle" font-size="10">${label(size)}</text>`)
    }
    out.push(
      `<rect x="${left}" y="${panel.top}" width="${panel.width}" height="${panel.height}" fill="none" stroke="#333"/>`
    )
    out.push(
      `<text x="${left + panel.width / 2}" y="${bottom + 36}" text-anchor="middle">value size (log scale)</text>`
    )
    out.push(
      `<text transform="translate(${left - 52},${
        panel.top + panel.height / 2
      }) rotate(-90)" text-anchor="middle">${which} MB/s, log scale (higher is better)</text>`
    )
    for (const s of series) {
      const points = s.points.map((pt) => `${xs(pt.size, left).toFixed(1)},${ys(pt[which]).toFixed(1)}`)
      out.push(
        `<polyline points="${points.join(" ")}" fill="none" stroke="${s.color}" stroke-width="2"${
          s.dash === undefined ? "" : ` stroke-dasharray="${s.dash}"`
        }/>`
      )
      for (const point of points) {
        const [x, y] = point.split(",")
        out.push(`<circle cx="${x}" cy="${y}" r="3" fill="${s.color}"/>`)
      }
    }
  }
  const legendY = height - 40
  series.forEach((s, i) => {
    const x = 60 + i * 240
    out.push(
      `<line x1="${x}" x2="${x + 28}" y1="${legendY}" y2="${legendY}" stroke="${s.color}" stroke-width="2"${
        s.dash === undefined ? "" : ` stroke-dasharray="${s.dash}"`
      }/>`
    )
    out.push(`<text x="${x + 34}" y="${legendY + 4}">${escape(s.name)}</text>`)
  })
  out.push("</svg>")
  return out.join("\n") + "\n"
}

const directory = benchDir("figure")
try {
  const ours = await measure(directory)
  const peer = diskcachePeer<Array<Point>>("throughput", directory, [SIZES.join(","), SIZES.map(repsOf).join(",")])
  const series: Array<Series> = [
    { name: "cacheness, Float64Array", color: "#1f77b4", points: ours.f64 },
    { name: "cacheness, Uint8Array", color: "#2ca02c", points: ours.u8 },
    { name: "raw fs write / read", color: "#7f7f7f", dash: "6 4", points: ours.files },
    ...(peer === undefined ? [] : [{ name: "python-diskcache, numpy float64", color: "#ff7f0e", points: peer }])
  ]
  table("Throughput vs value size, MB/s (medians; put / get)", [
    ["size", "reps", ...series.map((s) => s.name)],
    ...SIZES.map((
      size,
      i
    ) => [
      label(size),
      String(repsOf(size)),
      ...series.map((s) => `${fmt(s.points[i]!.put, 0)} / ${fmt(s.points[i]!.get, 0)}`)
    ])
  ])
  const commit = (() => {
    try {
      return execFileSync("git", ["rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim()
    } catch {
      return "unknown commit"
    }
  })()
  const load = os.loadavg()[0]!.toFixed(1)
  const subtitle =
    `${
      new Date().toISOString().slice(0, 10)
    }, commit ${commit}, node ${process.version}, ${os.cpus().length} cores shared ` +
    `with other jobs (load average ${load}): indicative, not final figures. Medians of 31 (small) down to 2 (256 MiB) runs.`
  fs.mkdirSync(path.dirname(OUT), { recursive: true })
  fs.writeFileSync(OUT, svg(series, subtitle))
  console.log(`wrote ${path.relative(process.cwd(), OUT)}`)
} finally {
  fs.rmSync(directory, { recursive: true, force: true })
}
