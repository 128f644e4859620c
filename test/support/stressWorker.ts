// A worker of the multi-process stress test: mixed put/get/invalidate/touch/has on keys every
// worker shares, for a fixed time, logging each operation with its start and end on the
// system-wide monotonic clock (process.hrtime is CLOCK_MONOTONIC on Linux, comparable across
// processes). Values embed writer id and sequence number; a read reports whose value it got, or
// "wrong" when the value is none that was ever written for its key.
import * as fs from "node:fs"
import { cacheness } from "../../src/index.js"
import { identify, kindOf, valueOf } from "./crashValues.js"

const [directory, writerText, keysText, durationText, logFile] = process.argv.slice(2)
const writer = Number(writerText)
const keys = Number(keysText)
const duration = Number(durationText)

const now = () => Number(process.hrtime.bigint() / 1000n) // microseconds

/** [op, key, start, end, result]: result is "w:seq" for a value, "-" for none, "true"/"false", "wrong", "error:…" */
const log: Array<[string, number, number, number, string]> = []

const cache = cacheness({ directory, maxSize: null, defaultTtl: null, cleanupOnOpen: false })
await cache.stats()
process.stdout.write("ready\n")
await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()))
process.stdin.destroy() // an open stdin would keep the process alive

const until = now() + duration * 1000
for (let seq = 1; now() < until; seq++) {
  const key = Math.floor(Math.random() * keys)
  const k = { stress: key }
  const r = Math.random()
  const start = now()
  let op: string
  let result: string
  try {
    if (r < 0.35) {
      op = "put"
      const kind = kindOf(Math.random() * 1.4 - 0.4 < 0 ? 0 : Math.random()) // ~75% small
      await cache.put(k, valueOf(key, writer, seq, kind))
      result = `${writer}:${seq}`
    } else if (r < 0.8) {
      op = "get"
      const got = await cache.get(k)
      if (got === undefined) result = "-"
      else {
        const id = identify(key, got)
        result = id === null ? "wrong" : `${id.writer}:${id.seq}`
      }
    } else if (r < 0.88) {
      op = "invalidate"
      result = String(await cache.invalidate(k))
    } else if (r < 0.95) {
      op = "touch"
      result = String(await cache.touch(k))
    } else {
      op = "has"
      result = String(await cache.has(k))
    }
  } catch (error) {
    op = "error"
    result = `error:${error instanceof Error ? error.message : String(error)}`
  }
  log.push([op, key, start, now(), result])
}
await cache.close()
fs.writeFileSync(logFile, JSON.stringify(log))
process.stdout.write("done\n")
