import * as Effect from "effect/Effect"
import * as Cache from "../src/Cache.js"
const N = 10000
await Effect.runPromise(Effect.scoped(Effect.provide(Effect.gen(function*() {
  const cache = yield* Cache.Cache
  for (let i = 0; i < N; i++) yield* cache.put({ user: i, region: "eu-west", version: 3 }, { id: i, name: `user-${i}` })
  for (let r = 0; r < 8; r++) {
    let t = performance.now()
    const all = yield* cache.list()
    const t1 = performance.now()
    const params = all.map((e) => JSON.stringify(e.params))
    console.log("cache.list", (t1 - t).toFixed(1), params[0])
  }
}), Cache.layer({ directory: process.argv[2], maxSize: null, cleanupOnOpen: false }))))
