// A script that stores and reads back a large array (its get decoded half on the block worker)
// and ends without close(): the process must still exit, the worker being unref'd once idle.
// With "no-shared-memory", SharedArrayBuffer is removed first, as on a runtime without it.
if (process.argv[3] === "no-shared-memory") delete (globalThis as { SharedArrayBuffer?: unknown }).SharedArrayBuffer
const BlockWorkers = await import("../../src/codec/blockWorkers.js")
const { cacheness } = await import("../../src/index.js")

const cache = cacheness({ directory: process.argv[2]! })
const value = new Float64Array((48 << 20) / 8).map((_, i) => Math.sin(i / 1000))
await cache.put({ big: 1 }, value)
const warm = await BlockWorkers.warm(64 << 20)
const back = (await cache.get({ big: 1 })) as Float64Array
let same = back.length === value.length
for (let i = 0; same && i < value.length; i++) same = Object.is(back[i], value[i])
process.stdout.write(JSON.stringify({ warm, jobs: BlockWorkers.jobs(), same }))
