import * as Effect from "effect/Effect"
import * as Cache from "../src/Cache.js"
const prog = Effect.gen(function*() {
  const cache = yield* Cache.Cache
  let t = performance.now()
  for (let i = 0; i < 200; i++) yield* cache.put({ i }, `${i}`)
  console.log("put ms/op", ((performance.now() - t) / 200).toFixed(2))
  t = performance.now()
  for (let i = 0; i < 200; i++) yield* cache.get({ i })
  console.log("get ms/op", ((performance.now() - t) / 200).toFixed(2))
  t = performance.now()
  const sql = yield* cache.sql
  for (let i = 0; i < 200; i++) yield* sql.unsafe("SELECT 1")
  console.log("select1 ms/op", ((performance.now() - t) / 200).toFixed(2))
})
await Effect.runPromise(Effect.scoped(Effect.provide(prog, Cache.layer({ metadataBackend: "postgres", blobs: "postgres", postgres: { url: "postgres://postgres@127.0.0.1:5432/test", schema: "tmpp" } }))))
