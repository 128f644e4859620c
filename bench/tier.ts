/**
 * Memory-tier benchmark (issue 20): get-hit p50/p99 with `memory: {}` (maxStaleness 0: the change
 * count checked on every hit) and `memory: { maxStaleness: "100 millis" }`, beside today's disk
 * hit (no tier), through the Effect API and the Promise API `cacheness(...)`. SQLite + files in a
 * fresh directory; 1,000 keys (named parameters), values of ~150 B (inline) and a 64 KiB
 * Float64Array (a blob). With PostgreSQL reachable (`CACHENESS_TEST_PG_URL`), the same on
 * PostgreSQL metadata and blobs. Targets: tier hit at maxStaleness 0 ≤ 0.5× the disk hit;
 * at "100 millis" ≤ 1.5 µs through the Promise API.
 */
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as path from "node:path"
import { Cache, type CacheConfig, cacheness } from "../src/index.js"
import { benchDir, fmt, isMain, now, percentile, table } from "./support.js"

const KEYS = 1_000
const ROUNDS = 20

const small = (i: number) => ({ id: i, name: `user-${i}`, tags: ["alpha", "beta"], score: i / 7, active: true })
const large = (i: number) => new Float64Array(8192).fill(i)

interface Latency {
  readonly p50: number
  readonly p99: number
}

const summary = (samples: ReadonlyArray<number>): Latency => ({
  p50: percentile(samples, 50),
  p99: percentile(samples, 99)
})

type Value = (i: number) => unknown

const promiseHits = async (config: CacheConfig, value: Value, keys: number): Promise<Latency> => {
  const cache = cacheness({ ...config, maxSize: null })
  for (let i = 0; i < keys; i++) await cache.put({ user: i, region: "eu" }, value(i))
  const samples: Array<number> = []
  for (let r = 0; r < ROUNDS; r++) {
    for (let i = 0; i < keys; i++) {
      const t = now()
      await cache.get({ user: i, region: "eu" })
      samples.push((now() - t) * 1000)
    }
  }
  await cache.close()
  return summary(samples.slice(keys)) // the first round fills the tier
}

const effectHits = (config: CacheConfig, value: Value, keys: number): Promise<Latency> =>
  Effect.runPromise(
    Effect.gen(function*() {
      const cache = yield* Cache.Cache
      for (let i = 0; i < keys; i++) yield* cache.put({ user: i, region: "eu" }, value(i))
      const samples: Array<number> = []
      for (let r = 0; r < ROUNDS; r++) {
        for (let i = 0; i < keys; i++) {
          const t = now()
          yield* cache.get({ user: i, region: "eu" })
          samples.push((now() - t) * 1000)
        }
      }
      return summary(samples.slice(keys))
    }).pipe(Effect.provide(Cache.layer({ ...config, maxSize: null })))
  )

const MODES: ReadonlyArray<readonly [string, CacheConfig["memory"]]> = [
  ["disk hit (no tier)", undefined],
  ["tier, maxStaleness 0", {}],
  ["tier, maxStaleness 100 millis", { maxStaleness: "100 millis" }]
]

const section = async (title: string, base: (mode: number) => CacheConfig, keysOf: (value: string) => number) => {
  const rows: Array<Array<string>> = [[
    "mode",
    "value",
    "Effect p50 µs",
    "p99",
    "Promise p50 µs",
    "p99",
    "× disk (Promise)"
  ]]
  for (const [label, value] of [["~150 B", small], ["64 KiB array", large]] as const) {
    let disk: number | undefined
    for (const [m, [mode, memory]] of MODES.entries()) {
      const config = { ...base(m), ...(memory === undefined ? {} : { memory }) }
      const effect = await effectHits({ ...config, ...withDir(config, "e") }, value, keysOf(label))
      const promise = await promiseHits({ ...config, ...withDir(config, "p") }, value, keysOf(label))
      disk ??= promise.p50
      rows.push([
        mode,
        label,
        fmt(effect.p50, 2),
        fmt(effect.p99, 2),
        fmt(promise.p50, 2),
        fmt(promise.p99, 2),
        fmt(promise.p50 / disk, 2)
      ])
    }
  }
  table(title, rows)
}

let counter = 0
const withDir = (config: CacheConfig, tag: string): CacheConfig =>
  config.directory === undefined ? config : { directory: path.join(config.directory, `${tag}${counter++}`) }

const pgReachable = async (url: string): Promise<boolean> => {
  const cache = cacheness({ metadataBackend: "postgres", blobs: "postgres", postgres: { url, schema: "bench_probe" } })
  try {
    await cache.has({ probe: true })
    return true
  } catch {
    return false
  } finally {
    await cache.close().catch(() => {})
  }
}

export const run = async (): Promise<void> => {
  const directory = benchDir("tier")
  await section(
    `memory tier: get hit, ${KEYS.toLocaleString("en-US")} keys × ${
      ROUNDS - 1
    } rounds (SQLite + files); targets: tier at 0 ≤ 0.5× disk, at 100 millis ≤ 1.5 µs (Promise)`,
    () => ({ directory }),
    (value) => value === "~150 B" ? KEYS : 200
  )
  const url = process.env.CACHENESS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"
  if (!(await pgReachable(url))) {
    console.log("memory tier on PostgreSQL skipped: PostgreSQL unreachable")
    return
  }
  const schema = `bench_tier_${Math.random().toString(36).slice(2, 8)}`
  try {
    await section(
      `memory tier on PostgreSQL (metadata + blobs, schema ${schema}): 200 keys × ${ROUNDS - 1} rounds`,
      (mode) => ({ metadataBackend: "postgres", blobs: "postgres", postgres: { url, schema: `${schema}_${mode}` } }),
      () => 200
    )
  } finally {
    await dropSchemas(url, [...MODES.keys()].map((mode) => `${schema}_${mode}`).concat("bench_probe"))
  }
}

/** The schemas the PostgreSQL section made, dropped afterwards (the database is shared with the tests). */
const dropSchemas = (url: string, schemas: ReadonlyArray<string>) =>
  Effect.runPromise(
    Effect.gen(function*() {
      const sql = yield* PgClient.PgClient
      for (const name of schemas) yield* sql.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
    }).pipe(Effect.scoped, Effect.provide(PgClient.layer({ url: Redacted.make(url) })))
  )

if (isMain(import.meta.url)) await run()
