// Bad-input fuzz (fast-check): arbitrary keys, values, options, filters and configurations go
// through the real cache (SQLite + files). Every call must succeed or fail with a typed cache
// error — never a defect — and a failed put must change nothing: same entries, same blob files,
// the previous value of its key still served.
import { assert, describe, it } from "@effect/vitest"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import fc from "fast-check"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as Compression from "../src/codec/compression.js"
import { captureWarnings } from "./support/logs.js"
import { sameValue } from "./support/sameValue.js"
import { recordFigures, stress } from "./support/stress.js"
import { listFiles, tempDir } from "./support/tmp.js"

const TYPED = ["KeyError", "CodecError", "StorageError", "MetadataError", "ConfigError"]

/** The typed error's tag, or null on success; fails the test on a defect. */
const outcome = (exit: Exit.Exit<unknown, unknown>, what: string): string | null => {
  if (Exit.isSuccess(exit)) return null
  assert.isTrue(Chunk.isEmpty(Cause.defects(exit.cause)), `${what}: a defect\n${Cause.pretty(exit.cause)}`)
  const failure = Cause.failureOption(exit.cause)
  assert.isTrue(Option.isSome(failure), `${what}: no typed failure\n${Cause.pretty(exit.cause)}`)
  const error = (failure as Option.Some<any>).value
  assert.include(TYPED, error._tag, what)
  assert.isString(error.message)
  assert.isAbove(error.message.length, 0)
  return error._tag
}

/** Two reads agree: the same error tag, or the same value (`sameValue`: an Invalid Date equals another). */
const sameOutcome = (
  a: Either.Either<Option.Option<unknown>, { _tag: string }>,
  b: Either.Either<Option.Option<unknown>, { _tag: string }>
): boolean => {
  if (Either.isLeft(a) || Either.isLeft(b)) return Either.isLeft(a) && Either.isLeft(b) && a.left._tag === b.left._tag
  if (Option.isNone(a.right) || Option.isNone(b.right)) return Option.isNone(a.right) && Option.isNone(b.right)
  return sameValue(a.right.value, b.right.value)
}

class Model {
  constructor(readonly weights: Array<number>) {}
  predict() {
    return this.weights
  }
}

const circular = () => {
  const o: any = { a: 1 }
  o.self = o
  return o
}

/** Values no serialiser should be trusted with, beside ordinary ones. */
const hostile = fc.oneof(
  fc.constant(() => 1),
  fc.constant(Symbol("s")),
  fc.constant(new WeakMap()),
  fc.constant(Promise.resolve(1)),
  fc.constant(new Model([1, 2])),
  fc.constant(new Date(Number.NaN)),
  fc.constant(Number.NaN),
  fc.constant(-0),
  fc.constant(2n ** 70n),
  fc.constant(new Float64Array([1, Number.NaN])),
  fc.constant(
    Object.assign(new Uint8Array(20_000).fill(7), { [fc.toStringMethod]: () => "Uint8Array(20000).fill(7)" })
  ),
  fc.constant(new Error("boom")),
  fc.constant(/regex/g),
  // Throws when a field is read (not for the generic probes printing it uses).
  fc.constant(
    new Proxy({}, {
      get: (target, name) => {
        if (
          typeof name === "string" && /^[a-z]/.test(name) &&
          !["toString", "valueOf", "constructor", "toJSON", "then"].includes(name)
        ) throw new Error(`trap: ${name}`)
        return Reflect.get(target, name)
      }
    })
  ),
  fc.constant(Object.create(null)),
  fc.constant(undefined),
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 })
)

const anyValue = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.anything({
      maxDepth: 3,
      withBigInt: true,
      withDate: true,
      withMap: true,
      withSet: true,
      withTypedArray: true,
      withNullPrototype: true,
      withSparseArray: true
    })
  },
  { weight: 2, arbitrary: hostile },
  { weight: 1, arbitrary: fc.constant(null).map(circular) }
)

const keyInput = fc.oneof(
  { weight: 3, arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
  { weight: 3, arbitrary: fc.record({ id: fc.integer({ min: 0, max: 20 }) }) }, // keys that collide across runs: overwrites
  { weight: 2, arbitrary: fc.dictionary(fc.string({ maxLength: 12 }), fc.oneof(anyValue, hostile), { maxKeys: 4 }) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.stringMatching(/^[0-9a-f]{16}$/) },
  { weight: 1, arbitrary: anyValue }
)

const maybe = <A>(arb: fc.Arbitrary<A>) =>
  fc.option(fc.oneof({ weight: 6, arbitrary: arb }, { weight: 1, arbitrary: anyValue }), { nil: undefined, freq: 2 })

const putOptions = fc.option(
  fc.record({
    ttl: maybe(fc.oneof(fc.constantFrom("1 hour", "5 minutes", "soon", "-1 hours", null), fc.integer(), fc.double())),
    description: maybe(fc.string()),
    namespace: maybe(fc.string({ maxLength: 10 })),
    metadata: maybe(fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 2 }))),
    schema: fc.option(fc.constantFrom(Schema.Number, Schema.String, Schema.Struct({ a: Schema.Number })), {
      nil: undefined
    })
  }, { requiredKeys: [] }),
  { nil: undefined }
)

describe("bad-input fuzz", () => {
  it.scopedLive(
    "put with arbitrary keys, values and options: success, or a typed error and nothing changed",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const context = yield* Layer.build(
          Cache.layer({ directory, maxSize: null, cleanupOnOpen: false, cleanupInterval: "100000 days" })
        )
        const cache = Context.get(context, Cache.Cache)
        const run = <A, E>(self: Effect.Effect<A, E>) => Effect.runPromiseExit(captureWarnings(self))
        const blobs = () => listFiles(path.join(directory, "blobs"))
        const figures: Record<string, number> = { runs: 0, succeeded: 0 }
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(keyInput, anyValue, putOptions, async (key, value, options) => {
              figures.runs++
              const before = { entries: (await Effect.runPromise(cache.stats())).entries, blobs: blobs() }
              const keyExit = await Effect.runPromiseExit(cache.key(key as any))
              const previous = Exit.isSuccess(keyExit)
                ? await Effect.runPromise(Effect.either(cache.get(keyExit.value)))
                : undefined
              const exit = await run(cache.put(key as any, value, options as any))
              const tag = outcome(exit, "put")
              if (tag === null) {
                figures.succeeded++
                const after = await run(cache.get(key as any))
                assert.strictEqual(outcome(after, "get after put"), null)
                return
              }
              figures[tag] = (figures[tag] ?? 0) + 1
              const after = { entries: (await Effect.runPromise(cache.stats())).entries, blobs: blobs() }
              assert.deepStrictEqual(after, before, "a failed put changed nothing")
              if (previous !== undefined && Exit.isSuccess(keyExit)) {
                const now = await Effect.runPromise(Effect.either(cache.get(keyExit.value)))
                assert.isTrue(sameOutcome(now, previous), "the previous value of the key is still served")
              }
            }),
            { numRuns: stress ? 2_000 : 250 }
          )
        )
        const report = yield* cache.verify()
        assert.deepStrictEqual([report.orphans, report.dangling, report.sizeMismatches, report.checksumMismatches], [
          [],
          [],
          [],
          []
        ])
        assert.deepStrictEqual(
          listFiles(path.join(directory, "blobs")).filter((f) => path.basename(f).startsWith(".")),
          [],
          "no temp files"
        )
        recordFigures("bad-input-put", figures)
      }),
    stress ? 600_000 : 120_000
  )

  it.scopedLive(
    "every other operation with arbitrary arguments: success or a typed error",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const context = yield* Layer.build(
          Cache.layer({ directory, maxSize: null, cleanupOnOpen: false, cleanupInterval: "100000 days" })
        )
        const cache = Context.get(context, Cache.Cache)
        yield* cache.put({ id: 1 }, "one", { namespace: "n" })
        const arg = fc.oneof(anyValue, keyInput)
        const operation = fc.oneof(
          fc.tuple(
            fc.constant("get"),
            keyInput,
            fc.option(fc.record({ schema: fc.constantFrom(Schema.Number, Schema.String) }), { nil: undefined })
          ),
          fc.tuple(fc.constant("getWithMetadata"), keyInput),
          fc.tuple(fc.constant("has"), keyInput),
          fc.tuple(fc.constant("touch"), keyInput, arg),
          fc.tuple(fc.constant("invalidate"), keyInput),
          fc.tuple(
            fc.constant("invalidateWhere"),
            fc.record({ namespace: arg, params: arg, createdBefore: arg, expiredOnly: arg }, { requiredKeys: [] })
          ),
          fc.tuple(
            fc.constant("list"),
            fc.record({
              limit: arg,
              offset: arg,
              namespace: arg,
              orderBy: fc.oneof(fc.constantFrom("createdAt", "hits", "nope; DROP TABLE x"), arg),
              descending: arg
            }, { requiredKeys: [] })
          ),
          fc.tuple(fc.constant("key"), arg)
        )
        const figures: Record<string, number> = { runs: 0 }
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(operation, async ([name, a, b]) => {
              figures.runs++
              const call = (cache as any)[name](a, b) as Effect.Effect<unknown, unknown>
              const tag = outcome(await Effect.runPromiseExit(captureWarnings(call)), name)
              figures[tag ?? "ok"] = (figures[tag ?? "ok"] ?? 0) + 1
            }),
            { numRuns: stress ? 2_000 : 300 }
          )
        )
        // The table survived whatever was passed as orderBy or filters.
        assert.isAtLeast((yield* cache.stats()).entries, 0)
        recordFigures("bad-input-operations", figures)
      }),
    stress ? 600_000 : 120_000
  )

  it.scoped.skipIf(Compression.byName.zstd.available)(
    "a codec this runtime lacks fails the layer build, naming the field",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        for (
          const [compression, field] of [
            [{ codec: "zstd" }, "compression.codec"],
            [{ byKind: { table: { codec: "zstd" } } }, "compression.byKind.table.codec"]
          ] as const
        ) {
          const error = yield* Effect.flip(Effect.scoped(Layer.build(Cache.layer({ directory, compression }))))
          assert.strictEqual(error._tag, "ConfigError")
          assert.strictEqual((error as Cache.ConfigError).field, field)
          assert.include(error.message, "zstd is not available")
        }
        assert.deepStrictEqual(listFiles(directory), [], "nothing was created")
      })
  )

  it.scopedLive(
    "arbitrary configurations: the layer builds, or a ConfigError names the field",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir
        const field = <A>(valid: fc.Arbitrary<A>) =>
          fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: anyValue })
        const config = fc.record({
          defaultTtl: field(fc.constantFrom("1 hour", null, 1000)),
          maxSize: field(fc.constantFrom("5 GB", "10 KiB", null, 0, 1024)),
          metadataBackend: field(fc.constantFrom("sqlite", "memory", "json")).filter((b) => b !== "postgres"),
          blobs: field(fc.constantFrom("filesystem", "memory")).filter((b) => b !== "postgres"),
          cleanupOnOpen: field(fc.boolean()),
          cleanupInterval: field(fc.constantFrom("1 hour", "10 minutes", 60_000, 0)),
          verifyIntegrity: field(fc.boolean()),
          inlineThreshold: field(fc.constantFrom("16 KiB", 0, 100, "1 MiB")),
          compression: field(
            fc.record({
              codec: field(fc.constantFrom("lz4", "zstd", "gzip", "none")),
              level: field(fc.integer({ min: 1, max: 9 }))
            }, { requiredKeys: [] })
          ),
          signing: field(fc.record({ key: field(fc.string()) })),
          permissions: field(fc.constantFrom("default", "private")),
          tables: field(fc.constantFrom("ipc", "parquet")),
          unknownField: fc.anything()
        }, { requiredKeys: [] }).map((c) => Math.random() < 0.9 ? (({ unknownField: _, ...rest }) => rest)(c) : c)
        const figures: Record<string, number> = { runs: 0, built: 0 }
        let n = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(config, async (cfg) => {
              figures.runs++
              const directory = path.join(root, `c${n++}`)
              const exit = await Effect.runPromiseExit(captureWarnings(Effect.scoped(Effect.gen(function*() {
                const context = yield* Layer.build(Cache.layer({ ...(cfg as any), directory }))
                const cache = Context.get(context, Cache.Cache)
                yield* cache.put({ k: 1 }, { v: 1 })
                return yield* cache.get({ k: 1 })
              }))))
              const tag = outcome(exit, "layer")
              if (tag === null) figures.built++
              else {
                figures[tag] = (figures[tag] ?? 0) + 1
                const failure = Option.getOrThrow(
                  Cause.failureOption(exit._tag === "Failure" ? exit.cause : Cause.empty)
                ) as any
                // A layer that builds must work: a bad setting is refused at build, not at every put.
                assert.strictEqual(tag, "ConfigError", failure.message)
                assert.match(failure.message, /invalid cache configuration: \S+/)
              }
              fs.rmSync(directory, { recursive: true, force: true })
            }),
            { numRuns: stress ? 400 : 60 }
          )
        )
        recordFigures("bad-input-config", figures)
      }),
    stress ? 600_000 : 120_000
  )
})
