// A child process for the cross-process modify test: opens the cache in <dir>, waits until
// <startAt> (epoch ms, so every worker contends at once), then increments the string counter
// "counter" <rounds> times through CacheKeyValueStore.modify, and exits.
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Cache from "../../src/Cache.js"
import * as CacheKeyValueStore from "../../src/CacheKeyValueStore.js"

const [directory, rounds, startAt] = process.argv.slice(2)

const program = Effect.gen(function*() {
  const kv = yield* KeyValueStore.KeyValueStore
  yield* kv.has("warm-up") // open the cache before the start signal
  yield* Effect.promise(() => new Promise((r) => setTimeout(r, Math.max(0, Number(startAt) - Date.now()))))
  for (let i = 0; i < Number(rounds); i++) {
    const next = yield* kv.modify("counter", (v) => String(Number(v) + 1))
    if (Option.isNone(next)) return yield* Effect.dieMessage("the counter is missing")
  }
})

await Effect.runPromise(
  program.pipe(Effect.provide(CacheKeyValueStore.layer().pipe(Layer.provide(Cache.layer({ directory })))))
)
