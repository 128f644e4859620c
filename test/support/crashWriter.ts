// The child of the crash-safety test: opens the cache, says "ready", then puts and invalidates
// forever — small inline values, large blobs, raw bytes, overwrites of each by each — until the
// test kills it with SIGKILL. Before each operation it prints `b <op> <key> <seq> <kind>`, after
// it `a`; stdout on a pipe is synchronous on Linux, so the parent knows which operations were
// acknowledged and which one (at most) was in flight when the process died.
//
// It starts before the previous writer's results are checked and waits for a line on stdin
// before opening the cache, so its start-up overlaps the parent's checks.
import { cacheness } from "../../src/index.js"
import { kindOf, valueOf } from "./crashValues.js"

const [directory, writerText, keysText] = process.argv.slice(2)
const writer = Number(writerText)
const keys = Number(keysText)

await new Promise<void>((resolve) => process.stdin.once("data", () => resolve()))
process.stdin.destroy() // an open stdin would keep the process alive
const cache = cacheness({ directory, maxSize: null, defaultTtl: null })
await cache.stats()
process.stdout.write("ready\n")

for (let seq = 1;; seq++) {
  const key = Math.floor(Math.random() * keys)
  if (Math.random() < 0.05) {
    process.stdout.write(`b invalidate ${key} ${seq} -\n`)
    await cache.invalidate({ crash: key })
  } else {
    const kind = kindOf(Math.random())
    process.stdout.write(`b put ${key} ${seq} ${kind}\n`)
    await cache.put({ crash: key }, valueOf(key, writer, seq, kind))
  }
  process.stdout.write("a\n")
}
