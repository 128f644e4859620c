// Another process writing to the cache a memory-tier test reads: a long-lived child taking one JSON
// command per stdin line (put, invalidate, clear, evict) and answering one JSON line on stdout
// once the write has committed. Argument: the cache config as JSON.
import * as readline from "node:readline"
import { cacheness } from "../../src/index.js"

const config = JSON.parse(process.argv[2]!)
const cache = cacheness(config)

type Command =
  | { readonly op: "put"; readonly key: Record<string, unknown>; readonly value: unknown; readonly ttl?: number }
  | { readonly op: "invalidate"; readonly key: Record<string, unknown> }
  | { readonly op: "has"; readonly key: Record<string, unknown> }
  | { readonly op: "clear" }
  | { readonly op: "cleanup" }
  | { readonly op: "close" }

const run = async (command: Command): Promise<unknown> => {
  switch (command.op) {
    case "put":
      return cache.put(command.key, command.value, command.ttl === undefined ? undefined : { ttl: command.ttl })
    case "invalidate":
      return cache.invalidate(command.key)
    case "has":
      return cache.has(command.key)
    case "clear":
      return cache.clear()
    case "cleanup":
      return cache.cleanupExpired()
    case "close":
      await cache.close()
      process.exit(0)
  }
}

const lines = readline.createInterface({ input: process.stdin })
// One command at a time, in order.
let queue = Promise.resolve()
lines.on("line", (line) => {
  queue = queue.then(async () => {
    try {
      const result = await run(JSON.parse(line))
      process.stdout.write(JSON.stringify({ ok: true, result: result ?? null }) + "\n")
    } catch (error) {
      process.stdout.write(JSON.stringify({ ok: false, error: String(error) }) + "\n")
    }
  })
})
process.stdout.write(JSON.stringify({ ready: true }) + "\n")
