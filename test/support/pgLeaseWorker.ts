// A child process for the cross-process single-flight test on PostgreSQL: every worker memoises the
// same function over one PostgreSQL-backed cache (its own working directory); a run of the function
// appends a line to `countFile`.   <sync dir> <schema> <countFile> <startAt epoch ms> <cwd>
import * as fs from "node:fs"
import { cacheness } from "../../src/index.js"

const [, schema, countFile, startAt, cwd] = process.argv.slice(2)
process.chdir(cwd)
const cache = cacheness({
  metadataBackend: "postgres",
  blobs: "postgres",
  postgres: { url: process.env.CACHENESS_TEST_PG_URL!, schema }
})
const expensive = cache.memoize(async (n: number) => {
  fs.appendFileSync(countFile, `${process.pid}\n`)
  await new Promise((r) => setTimeout(r, 1_000))
  return { answer: n * 6 }
}, { name: "expensive" })
await cache.stats() // open the cache before the start signal
await new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now())))
console.log(JSON.stringify(await expensive(7)))
await cache.close()
