import * as Effect from "effect/Effect"
import * as Cache from "../src/Cache.js"
import * as MetadataStoreSqlite from "../src/layers/MetadataStoreSqlite.js"
import { MetadataStore } from "../src/services/MetadataStore.js"
import * as path from "node:path"
import * as fs from "node:fs"
import * as os from "node:os"
const directory = fs.mkdtempSync(path.join(os.tmpdir(), "prof-"))
const N = 10000
await Effect.runPromise(Effect.scoped(Effect.provide(Effect.gen(function*() {
  const cache = yield* Cache.Cache
  for (let i = 0; i < N; i++) yield* cache.put({ user: i, region: "eu-west", version: 3 }, { id: i, name: `user-${i}` }, { ttl: i % 2 === 0 ? 1 : null })
  for (let r = 0; r < 5; r++) {
    let t = performance.now()
    yield* cache.list()
    console.log("cache.list", (performance.now() - t).toFixed(1))
  }
}), Cache.layer({ directory, maxSize: null, cleanupOnOpen: false }))))
await Effect.runPromise(Effect.scoped(Effect.gen(function*() {
  const store = yield* MetadataStoreSqlite.make({ filename: path.join(directory, "cacheness.db") })
  for (let r = 0; r < 5; r++) {
    let t = performance.now()
    const rows = yield* store.list({})
    const t2 = performance.now()
    let n = 0
    for (const r of rows) { n += JSON.parse(r.params!).user; new Date(r.createdAt); new Date(r.accessedAt) }
    console.log("store.list", (t2 - t).toFixed(1), "parse", (performance.now() - t2).toFixed(1))
  }
  let t = performance.now()
  const removed = yield* store.remove({ expiredAt: Date.now() + 100000, limit: 1000 })
  console.log("remove 1000", (performance.now() - t).toFixed(1), removed.length)
})))
