// A child process for the cross-process stale-while-revalidate test. Each worker memoises the same
// function over one cache directory, whose stored value is stale; a run of the function appends a
// line to `countFile`.
//   <dir> <countFile> <goFile>    opens the cache, appends its pid to `<countFile>.ready`, waits for
//                                 `goFile` to exist, calls, then calls until the new value (from
//                                 whichever process recomputed it) is served; prints both
// The recomputed value is stored for a minute, so a slow machine cannot see it go stale again.
import { cacheness } from "../../src/index.js"

const [directory, countFile, goFile] = process.argv.slice(2)
const fs = await import("node:fs")
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

const cache = cacheness({ directory })
const lookup = cache.memoize(async (n: number) => {
  fs.appendFileSync(countFile, `${process.pid}\n`)
  await sleep(1_000)
  return { answer: n * 6, by: String(process.pid) }
}, { name: "stale-shared", ttl: 60_000, staleWhileRevalidate: "5 minutes" })
await cache.key({ warm: "up" }) // open the cache before the start signal
fs.appendFileSync(`${countFile}.ready`, `${process.pid}\n`)
const waitUntil = Date.now() + 60_000
while (!fs.existsSync(goFile) && Date.now() < waitUntil) await sleep(5)
const first = await lookup(7)
let latest = first
const deadline = Date.now() + 30_000
while (latest.by === "seed" && Date.now() < deadline) {
  await sleep(50)
  latest = await lookup(7)
}
console.log(JSON.stringify({ first, latest }))
await cache.close()
