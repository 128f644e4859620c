/**
 * Quick start: a slow computation cached on the embedded default (SQLite + files).
 * Run with `npm run demo`.
 */
import { Effect, Option } from "effect"
import { Cache } from "../src/index.js"

/** Stands in for an expensive computation: a model's scores after two seconds of "training". */
const train = (model: string, dataset: string) =>
  Effect.gen(function*() {
    yield* Effect.sleep("1500 millis")
    return { model, dataset, scores: [0.91, 0.87, 0.93] }
  })

/** Returns the cached result when there is one, computes and stores it otherwise. */
const cachedTrain = (model: string, dataset: string) =>
  Effect.gen(function*() {
    const cache = yield* Cache.Cache
    const key = { model, dataset, version: "1.0" }
    const hit = yield* cache.get(key)
    if (Option.isSome(hit)) return hit.value
    const result = yield* train(model, dataset)
    yield* cache.put(key, result, { ttl: "48 hours", description: `${model} on ${dataset}` })
    return result
  })

const timed = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function*() {
    const start = performance.now()
    const result = yield* effect
    console.log(
      `${label.padEnd(6)} ${(performance.now() - start).toFixed(2).padStart(9)} ms  ${JSON.stringify(result)}`
    )
    return result
  })

const program = Effect.gen(function*() {
  const cache = yield* Cache.Cache
  yield* cache.invalidate({ model: "xgboost", dataset: "customer_data", version: "1.0" })
  yield* timed("miss", cachedTrain("xgboost", "customer_data"))
  yield* timed("hit", cachedTrain("xgboost", "customer_data"))
  const stats = yield* cache.stats()
  console.log(
    `stats  entries=${stats.entries} hits=${stats.hits} misses=${stats.misses} ` +
      `hitRate=${
        (stats.hitRate * 100).toFixed(1)
      }% bytes=${stats.totalBytes} backend=${stats.backend} dir=${stats.directory}`
  )
})

const directory = process.argv[2] ?? "./.cacheness"
Effect.runPromise(program.pipe(Effect.provide(Cache.layer({ directory })))).catch((error) => {
  console.error(error)
  process.exit(1)
})
