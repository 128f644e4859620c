// A writer of the verify-repair stress test: re-stores values of the keys it owns (most often
// the identical bytes again, sometimes a new version) for a fixed time, and writes the last
// acknowledged version of each key to its log when done. Values are deterministic in
// (writer, key, version), so the test can tell exactly what each key must hold.
import * as fs from "node:fs"
import { cacheness } from "../../src/index.js"
import { valueFor } from "./repairValues.js"

const [directory, writerText, keysText, durationText, logFile] = process.argv.slice(2)
const writer = Number(writerText)
const keys = Number(keysText)
const duration = Number(durationText)

const cache = cacheness({ directory, maxSize: null, defaultTtl: null, cleanupOnOpen: false })
await cache.stats()
process.stdout.write("ready\n")
await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()))
process.stdin.destroy() // an open stdin would keep the process alive

const acked: Array<number> = new Array(keys).fill(0)
let puts = 0
let restores = 0
const errors: Array<string> = []
const until = Date.now() + duration
while (Date.now() < until) {
  const key = Math.floor(Math.random() * keys)
  // Mostly identical bytes again: the case a repair bound to key + checksum mistook for its own.
  const restore = acked[key]! > 0 && Math.random() < 0.7
  const version = restore ? acked[key]! : acked[key]! + 1
  try {
    await cache.put({ repair: writer, key }, valueFor(writer, key, version))
    acked[key] = version
    puts++
    if (restore) restores++
  } catch (error) {
    errors.push(String(error))
  }
}
await cache.close()
fs.writeFileSync(
  logFile,
  JSON.stringify({ acked, puts, restores, errors: errors.slice(0, 5), errorCount: errors.length })
)
