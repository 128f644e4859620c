/**
 * An @effect/platform KeyValueStore on cacheness: strings and bytes keep their type, a
 * SchemaStore on top, and `modify` atomic even across processes. Entries never expire.
 * Run with `tsx examples/key-value-store.ts [directory]`.
 */
import * as KeyValueStore from "@effect/platform/KeyValueStore"
import { Effect, Layer, Option, Schema } from "effect"
import { Cache, CacheKeyValueStore } from "../src/index.js"

class Settings extends Schema.Class<Settings>("Settings")({ theme: Schema.String, fontSize: Schema.Number }) {}
const SettingsStore = KeyValueStore.layerSchema(Settings, "SettingsStore")

const program = Effect.gen(function*() {
  const kv = yield* KeyValueStore.KeyValueStore
  yield* kv.set("greeting", "hello")
  yield* kv.set("avatar", new Uint8Array([137, 80, 78, 71]))
  yield* kv.set("visits", "0")
  yield* Effect.forEach([1, 2, 3], () => kv.modify("visits", (n) => String(Number(n) + 1)), { concurrency: 3 })

  const settings = yield* SettingsStore.tag
  yield* settings.set("ada", new Settings({ theme: "dark", fontSize: 14 }))
  const ada = yield* settings.get("ada")

  console.log("greeting", Option.getOrNull(yield* kv.get("greeting")))
  console.log("avatar", Option.getOrThrow(yield* kv.getUint8Array("avatar")).length, "bytes")
  console.log("visits", Option.getOrNull(yield* kv.get("visits")))
  console.log("settings", Option.map(ada, (s) => s.theme).pipe(Option.getOrNull))
  console.log("size", yield* kv.size)
})

const directory = process.argv[2] ?? "./.cacheness-kv"
// A store, not a cache: no size limit, so nothing is ever evicted (the store sets no TTL itself).
const layer = SettingsStore.layer.pipe(
  Layer.provideMerge(CacheKeyValueStore.layer({ namespace: "app" })),
  Layer.provide(Cache.layer({ directory, maxSize: null }))
)
await Effect.runPromise(program.pipe(Effect.provide(layer)))
