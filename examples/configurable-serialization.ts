/**
 * Configurable serialization: how values are stored, and how to change it.
 *
 * 1. The compression codec (lz4, gzip, brotli, none) and level, per cache or per kind of value.
 * 2. The byte shuffle that makes numeric arrays compressible.
 * 3. A Schema: typed values (class instances included) encoded on put, validated on get.
 * 4. A format handler for your own type.
 *
 * Run: `npx tsx examples/configurable-serialization.ts [directory]`
 */
import { Effect, Option, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cache, type CacheConfig, Codec } from "../src/index.js"

const records = Array.from(
  { length: 2_000 },
  (_, i) => ({
    id: i,
    name: `customer-${i}`,
    segment: ["retail", "smb", "enterprise"][i % 3],
    spend: Math.round(i * 13.7)
  })
)
const signal = Float64Array.from({ length: 100_000 }, (_, i) => Math.sin(i / 500) * 100)
const text = new TextEncoder().encode("the quick brown fox jumps over the lazy dog\n".repeat(2_000))
const values = { records, signal, text } as const

/** Stores the three values in a fresh cache with this configuration; returns stored bytes per value. */
const storedSizes = (directory: string, config: CacheConfig) =>
  Effect.gen(function*() {
    const cache = yield* Cache.Cache
    const sizes: Record<string, string> = {}
    for (const [name, value] of Object.entries(values)) {
      yield* cache.put({ name }, value)
      const entry = (yield* cache.list()).find((e) => e.params?.name === name)!
      sizes[name] = `${entry.storedBytes} (${entry.format}/${entry.codec})`
    }
    return sizes
  }).pipe(Effect.provide(Cache.layer({ directory, ...config })))

// 3. A Schema: a class round-trips as a class; data that no longer matches it is a miss.
class Model extends Schema.Class<Model>("Model")({
  name: Schema.String,
  trainedAt: Schema.Date,
  weights: Schema.Array(Schema.Number)
}) {
  get size() {
    return this.weights.length
  }
}
const ModelV2 = Schema.Struct({
  name: Schema.String,
  trainedAt: Schema.Date,
  weights: Schema.Array(Schema.Number),
  bias: Schema.Number
})

// 4. Your own type: a handler with a stable format id, tried before the built-in formats.
class Point {
  constructor(readonly x: number, readonly y: number) {}
}
const points = Codec.handler({
  format: "point",
  guard: (u): u is Point => u instanceof Point,
  encode: (p) => new Uint8Array(new Float64Array([p.x, p.y]).buffer),
  decode: (bytes) => {
    // `bytes` is an exact Uint8Array (offset 0, its whole buffer): view it directly.
    const f = new Float64Array(bytes.buffer)
    return new Point(f[0], f[1])
  }
})

const program = (root: string) =>
  Effect.gen(function*() {
    console.log("1. codecs — stored bytes of the same values")
    const configs: ReadonlyArray<readonly [string, CacheConfig]> = [
      ["lz4 (default)", {}],
      ["gzip level 9", { compression: { codec: "gzip", level: 9 } }],
      ["brotli", { compression: { codec: "brotli" } }],
      ["none", { compression: { codec: "none" } }],
      ["lz4, arrays gzip", { compression: { codec: "lz4", byKind: { array: { codec: "gzip" } } } }]
    ]
    for (const [label, config] of configs) {
      const sizes = yield* storedSizes(path.join(root, label.replace(/\W+/g, "-")), config)
      console.log(
        `   ${label.padEnd(18)} records ${sizes.records.padEnd(22)} signal ${
          sizes.signal.padEnd(24)
        } text ${sizes.text}`
      )
    }

    console.log(`2. byte shuffle — Float64Array of ${signal.byteLength} bytes`)
    for (const shuffle of [true, false]) {
      const sizes = yield* storedSizes(path.join(root, `shuffle-${shuffle}`), { compression: { shuffle } })
      console.log(`   shuffle ${String(shuffle).padEnd(5)}  signal ${sizes.signal}`)
    }

    console.log("3. schema — typed values, validated on the way in and out")
    yield* Effect.gen(function*() {
      const cache = yield* Cache.Cache
      const model = new Model({ name: "churn", trainedAt: new Date("2024-05-01T00:00:00Z"), weights: [0.1, -0.4, 2.5] })
      yield* cache.put({ model: "churn" }, model, { schema: Model })
      const back = Option.getOrThrow(yield* cache.get({ model: "churn" }, { schema: Model }))
      console.log(
        `   get with schema: ${
          back instanceof Model ? "a Model" : typeof back
        }, ${back.size} weights, trained ${back.trainedAt.toISOString()}`
      )
      const newer = yield* cache.get({ model: "churn" }, { schema: ModelV2 })
      console.log(
        `   read with a newer schema (needs "bias"): ${
          Option.isNone(newer) ? "a miss — recompute and store again" : "a hit"
        }`
      )
      const bad = yield* Effect.flip(cache.put({ model: "bad" }, { name: "x" } as any, { schema: Model }))
      console.log(`   put of a value that does not match: ${bad._tag}`)
    }).pipe(Effect.provide(Cache.layer({ directory: path.join(root, "schema") })))

    console.log("4. a format handler for your own type")
    yield* Effect.gen(function*() {
      const cache = yield* Cache.Cache
      yield* cache.put({ shape: "corner" }, new Point(3, 4))
      const back = Option.getOrThrow(yield* cache.get({ shape: "corner" })) as Point
      const [entry] = yield* cache.list()
      console.log(
        `   stored as format "${entry.format}", ${entry.storedBytes} bytes; read back: ${
          back instanceof Point ? "a Point" : typeof back
        } (${back.x}, ${back.y})`
      )
    }).pipe(Effect.provide(Cache.layer({ directory: path.join(root, "handler"), handlers: [points] })))
  })

const root = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-serialization-"))
Effect.runPromise(program(root)).catch((error) => {
  console.error(error)
  process.exit(1)
})
