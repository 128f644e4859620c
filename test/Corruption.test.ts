// Corruption fuzz (fast-check): bytes flipped, truncated, extended or zeroed in blobs, in inline
// values (edited through a separate SQLite connection) and in the metadata database file itself.
// A damaged value must be a miss, its entry removed, a warning logged; a damaged database must
// give typed errors (or be moved aside and start empty); never a defect, never a wrong value.
import { assert, describe, it } from "@effect/vitest"
import Database from "better-sqlite3"
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import fc from "fast-check"
import * as fs from "node:fs"
import * as path from "node:path"
import { isDeepStrictEqual } from "node:util"
import * as Cache from "../src/Cache.js"
import { valueOf } from "./support/crashValues.js"
import { captureWarnings } from "./support/logs.js"
import { recordFigures, stress } from "./support/stress.js"
import { tempDir } from "./support/tmp.js"

const quiet = { cleanupOnOpen: false, cleanupInterval: "100000 days", maxSize: null, defaultTtl: null } as const

type Mutation =
  | { readonly kind: "flip"; readonly at: ReadonlyArray<number>; readonly mask: number }
  | { readonly kind: "truncate"; readonly to: number }
  | { readonly kind: "extend"; readonly extra: Uint8Array }
  | { readonly kind: "zero"; readonly from: number; readonly length: number }

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({
    kind: fc.constant("flip" as const),
    at: fc.array(fc.nat(), { minLength: 1, maxLength: 8 }),
    mask: fc.integer({ min: 1, max: 255 })
  }),
  fc.record({ kind: fc.constant("truncate" as const), to: fc.nat() }),
  fc.record({ kind: fc.constant("extend" as const), extra: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
  fc.record({ kind: fc.constant("zero" as const), from: fc.nat(), length: fc.integer({ min: 1, max: 4096 }) })
)

/** The mutated copy; `null` when the mutation happens to change nothing (zeroing zeros). */
const mutate = (bytes: Uint8Array, m: Mutation): Uint8Array | null => {
  const out = Buffer.from(bytes)
  switch (m.kind) {
    case "flip":
      for (const at of m.at) out[at % out.length] ^= m.mask
      break
    case "truncate":
      return out.subarray(0, m.to % out.length)
    case "extend":
      return Buffer.concat([out, m.extra])
    case "zero":
      out.fill(0, m.from % out.length, Math.min(out.length, (m.from % out.length) + m.length))
      break
  }
  return out.equals(Buffer.from(bytes)) ? null : out
}

/** A cache directory under `root` holding 24 entries (`{ db: i }`, every third a blob), closed. */
const pristineCache = (root: string) =>
  Effect.gen(function*() {
    const pristine = path.join(root, "pristine")
    const values = Array.from({ length: 24 }, (_, i) => valueOf(i, 2, i, i % 3 === 0 ? "large" : "small"))
    yield* Effect.scoped(Effect.provide(
      Effect.flatMap(
        Cache.Cache,
        (cache) => Effect.forEach(values, (v, i) => cache.put({ db: i }, v), { discard: true })
      ),
      Cache.layer({ directory: pristine, ...quiet })
    ))
    return { pristine, values }
  })

/** Values of each storage path: inline objects, blob objects, raw bytes. */
const storedValue = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }).map((json) => ({ json })),
  fc.tuple(
    fc.nat(),
    fc.constantFrom("small", "large", "bytes", "typed") as fc.Arbitrary<"small" | "large" | "bytes" | "typed">
  ).map(([seq, kind]) => valueOf(1, 1, seq, kind))
)

const runs = (normal: number, long: number) => (stress ? long : normal)

/** A failure is a typed cache error, never a defect or an interruption. */
const assertTyped = (exit: Exit.Exit<unknown, unknown>, what: string): "ok" | "error" => {
  if (Exit.isSuccess(exit)) return "ok"
  assert.isTrue(Chunk.isEmpty(Cause.defects(exit.cause)), `${what}: a defect\n${Cause.pretty(exit.cause)}`)
  const failure = Cause.failureOption(exit.cause)
  assert.isTrue(Option.isSome(failure), `${what}: no typed failure\n${Cause.pretty(exit.cause)}`)
  assert.include(["MetadataError", "StorageError", "CodecError"], (failure as Option.Some<any>).value._tag, what)
  return "error"
}

describe("corruption fuzz", () => {
  it.scopedLive(
    "damaged blobs and inline values: a miss, the entry removed, a warning; bystanders intact",
    () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const context = yield* Layer.build(Cache.layer({ directory, ...quiet }))
        const cache = Context.get(context, Cache.Cache)
        const run = <A, E>(self: Effect.Effect<A, E>) => Effect.runPromise(captureWarnings(self))
        const db = new Database(path.join(directory, "cacheness.db"))
        yield* Effect.addFinalizer(() => Effect.sync(() => db.close()))
        const rowOf = db.prepare(
          "SELECT blob_id AS blobId, inline_value AS inline FROM cacheness_entries WHERE key = ?"
        )
        const setInline = db.prepare("UPDATE cacheness_entries SET inline_value = ? WHERE key = ?")
        const bystander = valueOf(0, 0, 0, "large")
        yield* cache.put({ bystander: true }, bystander)
        const figures = { runs: 0, inline: 0, blob: 0, misses: 0, wrong: 0 }
        let n = 0
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(storedValue, mutation, async (value, m) => {
              const k = { corrupt: n++ }
              const key = (await run(cache.put(k, value))).result
              const row = rowOf.get(key) as { blobId: string | null; inline: Uint8Array | null }
              const file = row.blobId === null
                ? null
                : path.join(directory, "blobs", row.blobId.slice(0, 2), row.blobId.slice(2, 4), row.blobId)
              const original = file === null ? row.inline! : fs.readFileSync(file)
              const damaged = mutate(original, m)
              fc.pre(damaged !== null)
              if (file === null) setInline.run(damaged, key)
              else fs.writeFileSync(file, damaged!)
              figures.runs++
              figures[file === null ? "inline" : "blob"]++
              const { result, warnings } = await run(cache.get(k))
              if (Option.isSome(result)) figures.wrong++
              assert.isTrue(Option.isNone(result), `a damaged value was served (${m.kind})`)
              figures.misses++
              assert.isTrue(warnings.some((w) => w.includes(key) && w.includes("removed")), warnings.join("\n"))
              assert.isFalse((await run(cache.has(k))).result, "entry removed")
              if (file !== null) assert.isFalse(fs.existsSync(file), "its blob removed")
              assert.isTrue(
                isDeepStrictEqual((await run(cache.get({ bystander: true }))).result, Option.some(bystander))
              )
            }),
            { numRuns: runs(60, 600) }
          )
        )
        const report = yield* cache.verify()
        assert.deepStrictEqual([report.orphans, report.dangling, report.sizeMismatches, report.checksumMismatches], [
          [],
          [],
          [],
          []
        ])
        recordFigures("corruption-values", figures)
      }),
    stress ? 600_000 : 60_000
  )

  it.scopedLive(
    "a damaged schema that makes a migration fail: a typed error, not a defect (the fuzz's counterexample)",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir
        const { pristine } = yield* pristineCache(root)
        const file = path.join(pristine, "cacheness.db")
        const original = fs.readFileSync(file)
        // The fuzz's counterexample (seed 909708399): 2,629 zero bytes in the schema's pages.
        const damaged = Buffer.from(original)
        const from = 2097947959 % damaged.length
        damaged.fill(0, from, Math.min(damaged.length, from + 2629))
        fs.writeFileSync(file, damaged)
        const exit = yield* Effect.exit(Effect.scoped(Layer.build(Cache.layer({ directory: pristine, ...quiet }))))
        if (Exit.isFailure(exit)) assertTyped(exit, "open")
      })
  )

  it.scopedLive(
    "a damaged metadata database: typed errors or moved aside; never a defect, never a wrong value",
    () =>
      Effect.gen(function*() {
        const root = yield* tempDir
        const { pristine, values } = yield* pristineCache(root)
        const original = fs.readFileSync(path.join(pristine, "cacheness.db"))
        assert.isFalse(
          fs.existsSync(path.join(pristine, "cacheness.db-wal")) &&
            fs.statSync(path.join(pristine, "cacheness.db-wal")).size > 0,
          "checkpointed on close"
        )
        const figures = {
          runs: 0,
          movedAside: 0,
          openFailed: 0,
          opened: 0,
          hits: 0,
          misses: 0,
          typedErrors: 0,
          wrong: 0
        }
        let n = 0
        const dbMutation = fc.oneof(
          { weight: 4, arbitrary: mutation },
          // The header and schema page, where an open looks first.
          {
            weight: 1,
            arbitrary: fc.record({
              kind: fc.constant("flip" as const),
              at: fc.array(fc.nat({ max: 4095 }), { minLength: 1, maxLength: 4 }),
              mask: fc.integer({ min: 1, max: 255 })
            })
          }
        )
        yield* Effect.promise(() =>
          fc.assert(
            fc.asyncProperty(dbMutation, async (m) => {
              const damaged = mutate(original, m)
              fc.pre(damaged !== null)
              figures.runs++
              const directory = path.join(root, `run-${n++}`)
              fs.cpSync(pristine, directory, { recursive: true })
              fs.writeFileSync(path.join(directory, "cacheness.db"), damaged!)
              const exit = await Effect.runPromiseExit(Effect.scoped(captureWarnings(Effect.gen(function*() {
                const context = yield* Layer.build(Cache.layer({ directory, ...quiet }))
                const cache = Context.get(context, Cache.Cache)
                for (let i = 0; i < values.length; i++) {
                  const got = yield* Effect.exit(cache.get({ db: i }))
                  if (assertTyped(got, `get ${i}`) === "error") figures.typedErrors++
                  else if (Exit.isSuccess(got) && Option.isSome(got.value)) {
                    if (!isDeepStrictEqual(got.value.value, values[i])) figures.wrong++
                    assert.isTrue(isDeepStrictEqual(got.value.value, values[i]), `key ${i}: a wrong value`)
                    figures.hits++
                  } else figures.misses++
                }
                for (
                  const op of [cache.list(), cache.stats(), cache.verify(), cache.put({ db: "new" }, "after")] as const
                ) {
                  if (
                    assertTyped(yield* Effect.exit(op as Effect.Effect<unknown, unknown>), "operation") === "error"
                  ) figures.typedErrors++
                }
              }))))
              if (assertTyped(exit, "open") === "error") figures.openFailed++
              else {
                figures.opened++
                if (exit._tag === "Success" && exit.value.warnings.some((w) => w.includes("moved to"))) {
                  figures.movedAside++
                }
              }
              fs.rmSync(directory, { recursive: true, force: true })
            }),
            { numRuns: runs(25, 300) }
          )
        )
        recordFigures("corruption-database", figures)
      }),
    stress ? 600_000 : 90_000
  )

  for (const signing of [undefined, { key: "corruption test key" }]) {
    it.scoped(`a row that ends up under another key (a damaged index) is a miss, not that key's value${signing === undefined ? "" : " (signed)"}`, () =>
      Effect.gen(function*() {
        const directory = yield* tempDir
        const { result, warnings } = yield* captureWarnings(Effect.scoped(Effect.provide(
          Effect.gen(function*() {
            const cache = yield* Cache.Cache
            const x = yield* cache.put({ k: "x" }, { value: "x" })
            yield* cache.put({ k: "y" }, { value: "y" })
            const y = yield* cache.put({ k: "y-blob" }, valueOf(1, 1, 1, "large"))
            yield* cache.put({ k: "x-blob" }, valueOf(2, 2, 2, "large"))
            const db = new Database(path.join(directory, "cacheness.db"))
            // What an index entry pointing at the wrong row amounts to: key x now finds y's row.
            db.prepare("DELETE FROM cacheness_entries WHERE key = ?").run(x)
            db.prepare(
              "UPDATE cacheness_entries SET key = ? WHERE key = (SELECT key FROM cacheness_entries WHERE inline_value IS NOT NULL)"
            ).run(x)
            const xBlob = yield* cache.key({ k: "x-blob" })
            db.prepare("DELETE FROM cacheness_entries WHERE key = ?").run(xBlob)
            db.prepare("UPDATE cacheness_entries SET key = ? WHERE key = ?").run(xBlob, y)
            db.close()
            return [yield* cache.get({ k: "x" }), yield* cache.get({ k: "x-blob" })] as const
          }),
          Cache.layer({ directory, ...quiet, ...(signing === undefined ? {} : { signing }) })
        )))
        assert.deepStrictEqual(result, [Option.none(), Option.none()])
        assert.strictEqual(warnings.filter((w) => w.includes("removed")).length, 2)
      }))
  }

  it.scoped("a database file with a garbage header is moved aside (a stale WAL is not kept); the cache opens empty and says so", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.scoped(
        Effect.provide(Effect.flatMap(Cache.Cache, (c) => c.put({ k: 1 }, "v")), Cache.layer({ directory, ...quiet }))
      )
      const file = path.join(directory, "cacheness.db")
      const bytes = fs.readFileSync(file)
      bytes.fill(0x5a, 0, 100)
      fs.writeFileSync(file, bytes)
      fs.writeFileSync(`${file}-wal`, "stale wal")
      const { result, warnings } = yield* captureWarnings(Effect.scoped(Effect.provide(
        Effect.flatMap(
          Cache.Cache,
          (c) => Effect.all([c.get({ k: 1 }), c.stats(), c.put({ k: 2 }, "w"), c.get({ k: 2 })])
        ),
        Cache.layer({ directory, ...quiet })
      )))
      assert.isTrue(Option.isNone(result[0]))
      assert.strictEqual(result[1].entries, 0)
      assert.deepStrictEqual(result[3], Option.some("w"))
      const aside = fs.readdirSync(directory).filter((f) => f.startsWith("cacheness.db.corrupt-"))
      assert.includeMembers(aside, ["cacheness.db.corrupt-0"])
      const wal = `${file}-wal`
      assert.isFalse(
        fs.existsSync(wal) && fs.readFileSync(wal, "utf8") === "stale wal",
        "the stale WAL is not left beside the fresh database"
      )
      assert.strictEqual(warnings.length, 1)
      assert.match(warnings[0], /cacheness\.db is damaged .*moved to .*cacheness\.db\.corrupt-\d+, starting empty/)
    }))
})
