/**
 * An ML pipeline with cached stages: load → features → train → evaluate.
 *
 * - The raw data is a CSV file keyed by *content* (`Key.file`): rename or copy it and the cache
 *   still hits; edit it and everything downstream recomputes.
 * - Features are a Float64Array matrix and an Arrow table, stored column-wise with a byte
 *   shuffle + LZ4 (see docs/FORMATS.md).
 * - The later stages are `cached` functions: each runs once per distinct input (typed-array
 *   arguments are keyed by content), concurrent callers share one computation, and a failed
 *   stage is not stored.
 *
 * Run: `npx tsx examples/ml-pipeline.ts [directory]` — twice, to see the second run hit.
 */
import { type Table, tableFromArrays } from "apache-arrow"
import { Effect, Option } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cache, cached, Key } from "../src/index.js"

const runs: Array<string> = []

/**
 * Stage 1: parse the CSV into an Arrow table, stored as Arrow IPC. Keyed by the file's content,
 * not its name. (Written with get/put: `cached` stores its results inside an envelope, which the
 * columnar formats do not look into yet.)
 */
const load = (file: string) =>
  Effect.gen(function*() {
    const cache = yield* Cache.Cache
    const key = { stage: "load", data: Key.file(file) }
    const hit = yield* cache.get(key)
    if (Option.isSome(hit)) return hit.value as Table
    runs.push("load")
    const [, ...lines] = fs.readFileSync(file, "utf8").trim().split("\n")
    const rows = lines.map((l) => l.split(",").map(Number))
    const table: Table = tableFromArrays({
      age: Float64Array.from(rows, (r) => r[0]),
      income: Float64Array.from(rows, (r) => r[1]),
      churned: Int32Array.from(rows, (r) => r[2])
    })
    yield* cache.put(key, table, { ttl: "7 days", description: `customers from ${path.basename(file)}` })
    return table
  })

/** Stage 2: a standardised feature matrix, row-major Float64Array. */
const features = cached(
  (file: string, version: string) =>
    Effect.map(load(file), (table: Table) => {
      runs.push("features")
      const columns = ["age", "income"].map((name) => table.getChild(name)!.toArray() as Float64Array)
      const n = table.numRows
      const matrix = new Float64Array(n * columns.length)
      columns.forEach((col, j) => {
        const mean = col.reduce((a, b) => a + b, 0) / n
        const sd = Math.sqrt(col.reduce((a, b) => a + (b - mean) ** 2, 0) / n) || 1
        for (let i = 0; i < n; i++) matrix[i * columns.length + j] = (col[i] - mean) / sd
      })
      const churned = table.getChild("churned")!.toArray() as Int32Array
      return { x: matrix, y: churned, rows: n, version }
    }),
  // keyed by the data file's content: a copy hits, an edit misses
  { name: "features", ttl: "7 days", key: (file, version) => ({ data: Key.file(file), version }) }
)

/** Stage 3: logistic regression by gradient descent; the "model" is its weights. */
const train = cached(
  (x: Float64Array, y: Int32Array, params: { readonly epochs: number; readonly rate: number }) =>
    Effect.sync(() => {
      runs.push("train")
      const d = x.length / y.length
      const w = new Float64Array(d + 1)
      for (let epoch = 0; epoch < params.epochs; epoch++) {
        const grad = new Float64Array(d + 1)
        for (let i = 0; i < y.length; i++) {
          let z = w[d]
          for (let j = 0; j < d; j++) z += w[j] * x[i * d + j]
          const err = 1 / (1 + Math.exp(-z)) - y[i]
          for (let j = 0; j < d; j++) grad[j] += err * x[i * d + j]
          grad[d] += err
        }
        for (let j = 0; j <= d; j++) w[j] -= (params.rate * grad[j]) / y.length
      }
      return w
    }),
  { name: "train", ttl: "30 days" }
)

const accuracy = (w: Float64Array, x: Float64Array, y: Int32Array) => {
  const d = x.length / y.length
  let right = 0
  for (let i = 0; i < y.length; i++) {
    let z = w[d]
    for (let j = 0; j < d; j++) z += w[j] * x[i * d + j]
    if ((z > 0 ? 1 : 0) === y[i]) right++
  }
  return right / y.length
}

const pipeline = (file: string) =>
  Effect.gen(function*() {
    const before = runs.length
    const started = performance.now()
    const { x, y, rows } = yield* features(file, "v1")
    const w = yield* train(x, y, { epochs: 200, rate: 0.5 })
    const ran = runs.slice(before)
    console.log(
      `${path.basename(file).padEnd(20)} rows ${String(rows).padStart(5)}  accuracy ${accuracy(w, x, y).toFixed(3)}  ` +
        `${(performance.now() - started).toFixed(0).padStart(5)} ms  ran: ${
          ran.length === 0 ? "nothing (all cached)" : ran.join(", ")
        }`
    )
  })

const writeCsv = (file: string, n: number, seed: number) => {
  let s = seed
  const rand = () => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
  const lines = ["age,income,churned"]
  for (let i = 0; i < n; i++) {
    const age = 20 + rand() * 50
    const income = 20_000 + rand() * 100_000
    lines.push(`${age.toFixed(1)},${income.toFixed(0)},${age < 35 && income < 60_000 ? 1 : 0}`)
  }
  fs.writeFileSync(file, lines.join("\n"))
}

const program = (work: string) =>
  Effect.gen(function*() {
    const data = path.join(work, "customers.csv")
    writeCsv(data, 5_000, 7)
    yield* pipeline(data) // everything runs
    yield* pipeline(data) // everything cached
    const copy = path.join(work, "customers-copy.csv")
    fs.copyFileSync(data, copy)
    yield* pipeline(copy) // same content under another name: still cached
    writeCsv(data, 5_000, 8) // new data: every stage reruns
    yield* pipeline(data)
    const cache = yield* Cache.Cache
    const entries = yield* cache.list()
    const formats = [...new Set(entries.map((e) => e.format))].sort().join(", ")
    const stored = entries.reduce((n, e) => n + e.storedBytes, 0)
    const raw = entries.reduce((n, e) => n + e.rawBytes, 0)
    console.log(`cache: ${entries.length} entries (${formats}), ${stored} bytes stored for ${raw} raw`)
  })

const work = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-ml-"))
fs.mkdirSync(work, { recursive: true })
Effect.runPromise(program(work).pipe(Effect.provide(Cache.layer({ directory: path.join(work, "cache") })))).catch(
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
