/**
 * Core cache benchmark: 10,000 small objects (~150 B) under keys of 3 named params.
 * put ops/s, get-hit p50/p99, get-miss p50 — Effect API (plain and with HMAC signing) and Promise API — beside raw
 * better-sqlite3 insert/select of the same bytes, raw file write/read, and python-diskcache 5.4
 * when it is installed (Debian package python3-diskcache; `bench/peer/diskcache_bench.py core`).
 * The last column but one is the Promise API's ratio to the peer and to raw SQLite (issue 21's
 * targets). Each API is warmed up on a throwaway directory before the timed run.
 */
import Database from "better-sqlite3"
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as v8 from "node:v8"
import { Cache, cacheness } from "../src/index.js"
import { benchDir, diskcachePeer, fmt, isMain, keyOf, now, percentile, ratio, table, valueOf } from "./support.js"

const N = 10_000

interface Figures {
  putOps: number
  hitP50: number
  hitP99: number
  missP50: number
}

const effectApi = (directory: string, config: Cache.CacheConfig = {}): Promise<Figures> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      let t = now()
      for (let i = 0; i < N; i++) yield* cache.put(keyOf(i), valueOf(i))
      const putOps = N / ((now() - t) / 1000)
      const hits: Array<number> = []
      for (let i = 0; i < N; i++) {
        t = now()
        yield* cache.get(keyOf(i))
        hits.push((now() - t) * 1000)
      }
      const misses: Array<number> = []
      for (let i = 0; i < N; i++) {
        t = now()
        yield* cache.get(keyOf(N + i))
        misses.push((now() - t) * 1000)
      }
      return { putOps, hitP50: percentile(hits, 50), hitP99: percentile(hits, 99), missP50: percentile(misses, 50) }
    }).pipe(Effect.provide(Cache.layer({ directory, maxSize: null, ...config })))
  )

const promiseApi = async (directory: string): Promise<Figures> => {
  const cache = cacheness({ directory, maxSize: null })
  // Opened before the clock starts, as the other columns are: the Effect API's layer is built
  // before its loop runs and diskcache's `Cache(directory)` is outside its timing. The client
  // opens on its first call (~60–140 ms here), which would otherwise count as ~7 µs a put.
  await cache.stats()
  let t = now()
  for (let i = 0; i < N; i++) await cache.put(keyOf(i), valueOf(i))
  const putOps = N / ((now() - t) / 1000)
  const hits: Array<number> = []
  for (let i = 0; i < N; i++) {
    t = now()
    await cache.get(keyOf(i))
    hits.push((now() - t) * 1000)
  }
  const misses: Array<number> = []
  for (let i = 0; i < N; i++) {
    t = now()
    await cache.get(keyOf(N + i))
    misses.push((now() - t) * 1000)
  }
  await cache.close()
  return { putOps, hitP50: percentile(hits, 50), hitP99: percentile(hits, 99), missP50: percentile(misses, 50) }
}

const rawSqlite = (directory: string): Figures => {
  const db = new Database(path.join(directory, "raw.db"))
  db.pragma("journal_mode = WAL")
  db.pragma("synchronous = NORMAL")
  db.exec("CREATE TABLE kv (key TEXT PRIMARY KEY, value BLOB)")
  const insert = db.prepare("INSERT INTO kv VALUES (?, ?)")
  const select = db.prepare("SELECT value FROM kv WHERE key = ?").pluck()
  const keys = Array.from({ length: 2 * N }, (_, i) => JSON.stringify(keyOf(i)))
  let t = now()
  for (let i = 0; i < N; i++) insert.run(keys[i], v8.serialize(valueOf(i)))
  const putOps = N / ((now() - t) / 1000)
  const hits: Array<number> = []
  for (let i = 0; i < N; i++) {
    t = now()
    v8.deserialize(select.get(keys[i]) as any as Buffer)
    hits.push((now() - t) * 1000)
  }
  const misses: Array<number> = []
  for (let i = 0; i < N; i++) {
    t = now()
    select.get(keys[N + i])
    misses.push((now() - t) * 1000)
  }
  db.close()
  return { putOps, hitP50: percentile(hits, 50), hitP99: percentile(hits, 99), missP50: percentile(misses, 50) }
}

const rawFiles = (directory: string): Figures => {
  const dir = path.join(directory, "files")
  fs.mkdirSync(dir)
  let t = now()
  for (let i = 0; i < N; i++) fs.writeFileSync(path.join(dir, `k${i}`), v8.serialize(valueOf(i)))
  const putOps = N / ((now() - t) / 1000)
  const hits: Array<number> = []
  for (let i = 0; i < N; i++) {
    t = now()
    v8.deserialize(fs.readFileSync(path.join(dir, `k${i}`)))
    hits.push((now() - t) * 1000)
  }
  const misses: Array<number> = []
  for (let i = 0; i < N; i++) {
    t = now()
    fs.existsSync(path.join(dir, `k${N + i}`))
    misses.push((now() - t) * 1000)
  }
  return { putOps, hitP50: percentile(hits, 50), hitP99: percentile(hits, 99), missP50: percentile(misses, 50) }
}

/** Runs the core benchmark and prints its table. */
export const run = async (): Promise<void> => {
  const directory = benchDir("core")
  try {
    // Warm-up: each API runs the whole workload once on a throwaway directory first, so the timed
    // run measures the JIT-compiled code and not V8's warm-up (diskcache, in CPython, has none).
    await effectApi(path.join(directory, "warmup-effect"))
    await promiseApi(path.join(directory, "warmup-promise"))
    const figures = {
      effect: await effectApi(path.join(directory, "effect")),
      signed: await effectApi(path.join(directory, "signed"), { signing: { key: "bench signing key" } }),
      promise: await promiseApi(path.join(directory, "promise")),
      sqlite: rawSqlite(directory),
      files: rawFiles(directory),
      diskcache: diskcachePeer<Figures>("core", directory)
    }
    const versus = (pick: (f: Figures) => number) =>
      `${ratio(pick(figures.promise), figures.diskcache && pick(figures.diskcache), "diskcache")}, ${
        ratio(pick(figures.promise), pick(figures.sqlite), "raw SQLite")
      }`
    const row = (label: string, pick: (f: Figures) => number, target: string, digits = 1) => [
      label,
      fmt(pick(figures.effect), digits),
      fmt(pick(figures.signed), digits),
      fmt(pick(figures.promise), digits),
      fmt(pick(figures.sqlite), digits),
      fmt(pick(figures.files), digits),
      figures.diskcache === undefined ? "n/a" : fmt(pick(figures.diskcache), digits),
      versus(pick),
      target
    ]
    table(
      `core: ${N.toLocaleString("en-US")} objects of ~${v8.serialize(valueOf(1)).length} B, keys of 3 named params`,
      [
        [
          "operation",
          "Effect API",
          "Effect, HMAC-signed",
          "Promise API",
          "raw SQLite",
          "raw fs",
          "diskcache 5.4",
          "Promise ÷ peer, ÷ limit",
          "target (Effect / Promise)"
        ],
        row("put ops/s", (f) => f.putOps, "≥ 10,000; ≥ 2× diskcache, ≥ 0.5× raw SQLite", 0),
        row("get hit p50 µs", (f) => f.hitP50, "≤ 18 / ≤ 25"),
        row("get hit p99 µs", (f) => f.hitP99, ""),
        row("get miss p50 µs", (f) => f.missP50, "")
      ]
    )
  } finally {
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

if (isMain(import.meta.url)) await run()
