// One process of the many-machines rig (test/ManyMachines.test.ts, bench/rig.ts): a cache on the
// shared PostgreSQL schema and S3 bucket, with its machine's own local directory, running mixed
// put / get / overwrite / invalidate / has / memoised calls on keys every process shares, for a
// fixed time. Each operation is logged with its start and end on the system-wide monotonic clock
// (process.hrtime is CLOCK_MONOTONIC on Linux, comparable across processes). Values are
// self-verifying (crashValues.ts: key, writer and seq, regenerated and compared); a read that gets
// anything else logs "wrong". The operation mix is drawn from a PRNG seeded by the writer id.
//
//   <directory> <machine> <writer> <keys> <memoKeys> <durationMs> <logFile> <pgSchema> <s3Endpoint> <s3Prefix>
// PostgreSQL from CACHENESS_TEST_PG_URL. Prints "ready", waits for a line on stdin, runs, writes
// its log as JSON and prints "done".
import * as fs from "node:fs"
import { cacheness, type CachenessOptions } from "../../src/index.js"
import { identify, kindOf, valueOf } from "./crashValues.js"
import { bucket, credentials } from "./s3.js"

const [directory, machineText, writerText, keysText, memoKeysText, durationText, logFile, schema, endpoint, prefix] =
  process.argv.slice(2)
const machine = Number(machineText)
const writer = Number(writerText)
const keys = Number(keysText)
const memoKeys = Number(memoKeysText)
const duration = Number(durationText)

const now = () => Number(process.hrtime.bigint() / 1000n) // microseconds

/** mulberry32, seeded by the writer: the same sequence of choices on every run. */
let seed = writer * 0x9e3779b1
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0
  let t = seed
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296
}

/**
 * [op, key, start, end, result]: result is "w:seq" for a value, "-" for none, "true"/"false",
 * "wrong", "error:…"; for "memo" the writer whose computation the call returned; "computed" is a
 * run of the memoised function by this process.
 */
const log: Array<[string, number, number, number, string]> = []

const config: CachenessOptions = {
  directory,
  metadataBackend: "postgres",
  postgres: { url: process.env.CACHENESS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test", schema },
  blobs: "s3",
  s3: { bucket, prefix, endpoint, forcePathStyle: true, credentials: { ...credentials } },
  maxSize: null,
  defaultTtl: null,
  cleanupOnOpen: false,
  // Each process its own memory tier, coherent by default (maxStaleness 0): another machine's
  // overwrite or invalidation must be seen by this process's next read.
  memory: { maxEntries: 1_000, maxSize: "64 MiB" }
}
const cache = cacheness(config)

// The function every machine memoises: its value names who computed it, so a call that returned
// another computation's value than the others did shows up.
const square = cache.memoize(async (n: number) => {
  const start = now()
  await new Promise((resolve) => setTimeout(resolve, 20))
  log.push(["computed", n, start, now(), String(writer)])
  return { n, square: n * n, by: writer }
}, { name: "rig-square", ttl: null })

await cache.stats()
process.stdout.write("ready\n")
await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()))
process.stdin.destroy() // an open stdin would keep the process alive

const until = now() + duration * 1000
for (let seq = 1; now() < until; seq++) {
  const r = random()
  const key = Math.floor(random() * keys)
  const k = { rig: key }
  const start = now()
  let op: string
  let result: string
  let logKey = key
  try {
    if (r < 0.3) {
      op = "put" // an overwrite whenever the key holds a value: the key space is small
      await cache.put(k, valueOf(key, writer, seq, kindOf(random())))
      result = `${writer}:${seq}`
    } else if (r < 0.72) {
      op = "get"
      const got = await cache.get(k)
      if (got === undefined) result = "-"
      else {
        const id = identify(key, got)
        result = id === null ? "wrong" : `${id.writer}:${id.seq}`
      }
    } else if (r < 0.8) {
      op = "invalidate"
      result = String(await cache.invalidate(k))
    } else if (r < 0.85) {
      op = "has"
      result = String(await cache.has(k))
    } else {
      op = "memo"
      logKey = Math.floor(random() * memoKeys)
      const got = await square(logKey)
      result = got.n === logKey && got.square === logKey * logKey && Number.isInteger(got.by)
        ? String(got.by)
        : "wrong"
    }
  } catch (error) {
    op = "error"
    result = `error:${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`
  }
  log.push([op, logKey, start, now(), result])
}
await cache.close()
fs.writeFileSync(logFile, JSON.stringify({ machine, writer, log }))
process.stdout.write("done\n")
