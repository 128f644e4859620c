// A script that opens a cache with a memory tier (on PostgreSQL: a LISTEN connection too), reads
// and writes, and ends without close(): the process must still exit.
import { cacheness } from "../../src/index.js"

const cache = cacheness(JSON.parse(process.argv[2]!))
await cache.put({ exit: 1 }, "value")
const first = await cache.get({ exit: 1 })
const second = await cache.get({ exit: 1 })
process.stdout.write(JSON.stringify({ value: second, same: first === second }))
