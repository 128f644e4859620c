/**
 * Values a handler's guard accepts but cannot write faithfully (apache-arrow's CommonJS build or a
 * second copy of it, Polars look-alikes, foreign instances in user handlers) are refused at put;
 * entries whose format this process has no handler for are a miss that keeps the entry; custom
 * handlers decode from an exact `Uint8Array` (issue 15, items 1, 2 and 14).
 */
import { assert, beforeAll, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import Database from "better-sqlite3"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { spawn } from "node:child_process"
import * as fs from "node:fs"
import { createRequire } from "node:module"
import * as path from "node:path"
import * as Cache from "../src/Cache.js"
import * as CodecDefault from "../src/codec/registry.js"
import * as Codec from "../src/codec/service.js"
import { ensureBuilt, root } from "./support/build.js"
import { captureWarnings } from "./support/logs.js"
import { listFiles, makeTempDir, tempDir } from "./support/tmp.js"

const require = createRequire(import.meta.url)
// The CommonJS build, as `require("apache-arrow")` gives it to a CommonJS app.
const CjsArrow = require("apache-arrow") as typeof Arrow

/** A second, independent copy of apache-arrow's CommonJS build (as a nested install would load). */
const secondCopy = (): typeof Arrow => {
  const dir = path.dirname(require.resolve("apache-arrow"))
  const saved = new Map<string, NodeJS.Module>()
  for (const [file, module] of Object.entries(require.cache)) {
    if (file.startsWith(dir + path.sep) && module !== undefined) {
      saved.set(file, module)
      delete require.cache[file]
    }
  }
  const copy = require("apache-arrow") as typeof Arrow
  for (const file of Object.keys(require.cache)) if (file.startsWith(dir + path.sep)) delete require.cache[file]
  for (const [file, module] of saved) require.cache[file] = module
  return copy
}

const rowsOf = (directory: string) => {
  const db = new Database(path.join(directory, "cacheness.db"), { readonly: true })
  try {
    return db.prepare("SELECT key, format FROM cacheness_entries ORDER BY key").all() as Array<
      { key: string; format: string }
    >
  } finally {
    db.close()
  }
}

const failureOf = (exit: Exit.Exit<unknown, unknown>): any => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  return Option.getOrThrow(Cause.failureOption((exit as Exit.Failure<unknown, unknown>).cause))
}

const sample = (arrow: typeof Arrow) =>
  arrow.tableFromArrays({
    id: new Int32Array([1, 2, 3]),
    value: new Float64Array([0.5, -1, 2.25]),
    name: ["a", "b", "c"]
  })

const assertSample = (value: unknown) => {
  assert.isTrue(value instanceof Arrow.Table)
  const table = value as Arrow.Table
  assert.deepStrictEqual(table.schema.fields.map((f) => String(f.type)), [
    "Int32",
    "Float64",
    "Dictionary<Int32, Utf8>"
  ])
  assert.deepStrictEqual(table.toArray().map((row) => row.toJSON()), [
    { id: 1, value: 0.5, name: "a" },
    { id: 2, value: -1, name: "b" },
    { id: 3, value: 2.25, name: "c" }
  ])
}

describe("Arrow tables from another build or copy of apache-arrow", () => {
  it.scoped("a table of the CommonJS build is stored and reads back (IPC and Parquet, inline and blob)", () =>
    Effect.gen(function*() {
      assert.notStrictEqual(CjsArrow.Table, Arrow.Table)
      const directory = yield* tempDir
      const big = CjsArrow.tableFromArrays({ x: new Float64Array(50_000).map((_, i) => i * 0.5) })
      for (const tables of ["ipc", "parquet"] as const) {
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          yield* cache.put({ t: "small", tables }, sample(CjsArrow))
          assertSample(Option.getOrThrow(yield* cache.get({ t: "small", tables })))
          yield* cache.put({ t: "big", tables }, big)
          const back = Option.getOrThrow(yield* cache.get({ t: "big", tables })) as Arrow.Table
          assert.strictEqual(String(back.schema.fields[0]!.type), "Float64")
          assert.strictEqual(back.numRows, 50_000)
          assert.strictEqual(back.getChild("x")!.get(49_999), 49_999 * 0.5)
        }).pipe(Effect.provide(Cache.layer({ directory, tables, cleanupOnOpen: false })))
      }
      assert.deepStrictEqual(rowsOf(directory).map((r) => r.format).sort(), [
        "arrow@4",
        "arrow@4",
        "parquet",
        "parquet"
      ])
    }))

  it.effect("an ESM Table over CommonJS batches is written by the build of its types; columns of both builds are refused", () =>
    Effect.gen(function*() {
      const service = CodecDefault.make()
      const cjs = sample(CjsArrow)
      const wrapped = new Arrow.Table(cjs.batches)
      assert.isTrue(Object.getPrototypeOf(wrapped) === Arrow.Table.prototype)
      assertSample(yield* Effect.flatMap(service.encode(wrapped), (e) => service.decode(e.bytes)))
      const both = new Arrow.Table({
        a: cjs.getChild("value")!,
        b: Arrow.tableFromArrays({ b: new Int32Array([1, 2, 3]) }).getChild("b")!
      })
      const error = failureOf(yield* Effect.exit(service.encode(both)))
      assert.strictEqual(error.reason, "Unserializable")
      assert.match(error.message, /from two copies at once/)
    }))

  it.effect("a table of a second copy of apache-arrow is a CodecError at put, and nothing is stored", () =>
    Effect.gen(function*() {
      // The CommonJS build is known to the codec once it has seen one of its tables.
      assertSample(
        yield* Effect.flatMap(CodecDefault.make().encode(sample(CjsArrow)), (e) => CodecDefault.make().decode(e.bytes))
      )
      const Other = secondCopy()
      assert.notStrictEqual(Other.Table, CjsArrow.Table)
      const foreign = sample(Other)
      assert.isTrue(foreign instanceof Arrow.Table, "apache-arrow's own guard accepts it")
      for (const tables of ["ipc", "parquet"] as const) {
        const error = failureOf(yield* Effect.exit(CodecDefault.make({ tables }).encode(foreign)))
        assert.strictEqual(error._tag, "CodecError")
        assert.strictEqual(error.reason, "Unserializable")
        assert.match(error.message, /another copy of apache-arrow|other than the one cacheness uses/)
      }
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        const exit = yield* Effect.exit(cache.put({ t: 1 }, foreign))
        assert.strictEqual(failureOf(exit)._tag, "CodecError")
        assert.isFalse(yield* cache.has({ t: 1 }))
        assert.strictEqual((yield* cache.list()).length, 0)
      }).pipe(Effect.provide(Cache.layerMemory()))
    }))
})

describe("Polars look-alikes", () => {
  it.scoped("a value the Polars guard accepts whose writer returns no Arrow/Parquet file is a CodecError at put", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const lookAlike = {
        [Symbol.toStringTag]: "DataFrame",
        writeIPC: () => new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]),
        writeParquet: () => new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]),
        getColumns: () => []
      }
      for (const tables of ["ipc", "parquet"] as const) {
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          const error = failureOf(yield* Effect.exit(cache.put({ df: tables }, lookAlike)))
          assert.strictEqual(error._tag, "CodecError")
          assert.strictEqual(error.reason, "Unserializable")
          assert.match(error.message, /did not return (an Arrow IPC|a Parquet) file/)
        }).pipe(Effect.provide(Cache.layer({ directory, tables, cleanupOnOpen: false })))
      }
      assert.deepStrictEqual(rowsOf(directory), [])
      // A real DataFrame still passes the check.
      const pl = yield* Effect.promise(() => import("nodejs-polars"))
      const df = pl.DataFrame({ a: [1, 2, 3] })
      for (const tables of ["ipc", "parquet"] as const) {
        const service = CodecDefault.make({ tables })
        const back = (yield* Effect.flatMap(service.encode(df), (e) => service.decode(e.bytes))) as typeof df
        assert.isTrue(back.frameEqual(df))
      }
    }))
})

class Point {
  constructor(readonly x: number, readonly y: number) {}
}

/** A point class of "another copy": the same shape tag, but its coordinates under other names. */
class OtherPoint {
  readonly kind = "point"
  constructor(readonly px: number, readonly py: number) {}
}

const jsonPoints = (options?: { readonly checkDecodes?: boolean }) =>
  Codec.handler({
    format: "json-point",
    // Accepts look-alikes, as guards testing a tag (or a Symbol.hasInstance) do.
    guard: (u): u is Point =>
      u instanceof Point || (typeof u === "object" && u !== null && (u as any).kind === "point"),
    encode: (p) => Buffer.from(JSON.stringify({ x: p.x, y: p.y })),
    decode: (bytes) => {
      const o = JSON.parse(Buffer.from(bytes).toString("utf8"))
      if (typeof o.x !== "number" || typeof o.y !== "number") throw new TypeError("a point needs numeric x and y")
      return new Point(o.x, o.y)
    },
    ...options
  })

describe("user handlers whose guard accepts foreign instances", () => {
  it.scoped("a value its own decode cannot read back fails the put with a CodecError; nothing is stored", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        yield* cache.put({ p: 1 }, new Point(1, 2))
        assert.deepStrictEqual(yield* cache.get({ p: 1 }), Option.some(new Point(1, 2)))
        const error = failureOf(yield* Effect.exit(cache.put({ p: 2 }, new OtherPoint(3, 4))))
        assert.strictEqual(error._tag, "CodecError")
        assert.strictEqual(error.reason, "Unserializable")
        assert.match(error.message, /json-point.*decode cannot read what its encode wrote.*numeric x and y/)
        assert.isFalse(yield* cache.has({ p: 2 }))
      }).pipe(Effect.provide(Cache.layer({ directory, handlers: [jsonPoints()], cleanupOnOpen: false })))
      assert.strictEqual(rowsOf(directory).length, 1)
    }))

  it.effect("an encode returning something other than bytes is a CodecError; checkDecodes: false skips the read-back", () =>
    Effect.gen(function*() {
      const notBytes = Codec.handler({
        format: "not-bytes",
        guard: (u): u is Point => u instanceof Point,
        encode: () => "text" as unknown as Uint8Array,
        decode: () => new Point(0, 0)
      })
      const error = failureOf(yield* Effect.exit(CodecDefault.make({ handlers: [notBytes] }).encode(new Point(1, 2))))
      assert.strictEqual(error.reason, "Unserializable")
      assert.match(error.message, /encode must return a Uint8Array/)
      const unchecked = CodecDefault.make({ handlers: [jsonPoints({ checkDecodes: false })] })
      assert.strictEqual((yield* unchecked.encode(new OtherPoint(3, 4))).format, "json-point")
    }))
})

const points = (format = "point") =>
  Codec.handler({
    format,
    guard: (u): u is Point => u instanceof Point,
    encode: (p) => new Uint8Array(new Float64Array([p.x, p.y]).buffer),
    decode: (bytes) => {
      const f = new Float64Array(bytes.buffer)
      return new Point(f[0]!, f[1]!)
    }
  })

describe("entries whose format this process has no handler for", () => {
  it.scoped("are a miss that keeps the entry; the cache with the handler still reads it", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const big = new Point(1.5, -2.5)
      const withHandler = Cache.layer({ directory, handlers: [points()], cleanupOnOpen: false, inlineThreshold: 1 })
      const inlined = Cache.layer({ directory, handlers: [points()], cleanupOnOpen: false })
      yield* Effect.flatMap(Cache.Cache, (cache) => cache.put({ p: "blob" }, big)).pipe(Effect.provide(withHandler))
      yield* Effect.flatMap(Cache.Cache, (cache) => cache.put({ p: "inline" }, new Point(3, 4))).pipe(
        Effect.provide(inlined)
      )
      const before = listFiles(directory).filter((f) => f.startsWith("blobs"))
      assert.strictEqual(before.length, 1)

      const { warnings } = yield* captureWarnings(
        Effect.gen(function*() {
          const cache = yield* Cache.Cache
          for (const p of ["blob", "inline", "blob"]) {
            assert.isTrue(Option.isNone(yield* cache.get({ p })), p)
            assert.isTrue(Option.isNone(yield* cache.getWithMetadata({ p })), p)
          }
          assert.strictEqual((yield* cache.list()).length, 2)
        }).pipe(Effect.provide(Cache.layer({ directory, cleanupOnOpen: false })))
      )
      assert.isTrue(
        warnings.some((w) => /no handler for format "point".*kept, treated as a miss/.test(w)),
        warnings.join("\n")
      )
      assert.deepStrictEqual(rowsOf(directory).map((r) => r.format), ["point", "point"])
      assert.deepStrictEqual(listFiles(directory).filter((f) => f.startsWith("blobs")), before)

      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        assert.deepStrictEqual(yield* cache.get({ p: "blob" }), Option.some(big))
        assert.deepStrictEqual(yield* cache.get({ p: "inline" }), Option.some(new Point(3, 4)))
      }).pipe(Effect.provide(withHandler))
    }))

  it.scoped("bytes that fail to decode under their own handler are still removed", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      yield* Effect.flatMap(Cache.Cache, (cache) => cache.put({ p: 1 }, new Point(1, 2))).pipe(
        Effect.provide(Cache.layer({ directory, handlers: [points()], cleanupOnOpen: false }))
      )
      const broken = Codec.handler({
        format: "point",
        guard: (u): u is Point => u instanceof Point,
        encode: (p) => new Uint8Array(new Float64Array([p.x, p.y]).buffer),
        decode: () => {
          throw new Error("not a point")
        }
      })
      yield* Effect.gen(function*() {
        const cache = yield* Cache.Cache
        assert.isTrue(Option.isNone(yield* cache.get({ p: 1 })))
      }).pipe(Effect.provide(Cache.layer({ directory, handlers: [broken], cleanupOnOpen: false })))
      assert.deepStrictEqual(rowsOf(directory), [])
    }))
})

describe("the CLI on entries of a format it has no handler for", () => {
  beforeAll(ensureBuilt, 300_000)

  it("`cacheness get` and `inspect` (the CLI has no custom handlers) keep the entry", async () => {
    const directory = makeTempDir()
    try {
      const key = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(Cache.Cache, (cache) => cache.put({ p: "cli" }, new Point(1, 2))).pipe(
            Effect.provide(Cache.layer({ directory, handlers: [points()], cleanupOnOpen: false }))
          )
        )
      )
      const bin = path.join(root, "dist/cli/main.js")
      for (const command of ["get", "inspect"]) {
        await new Promise<void>((resolve, reject) => {
          const { CACHENESS_DIR: _, ...env } = process.env
          const child = spawn(process.execPath, [bin, command, key, "--dir", directory], {
            cwd: root,
            env: { ...env, CACHENESS_PROGRESS: "never" },
            stdio: "ignore"
          })
          child.on("error", reject)
          child.on("close", () => resolve())
        })
        assert.strictEqual(rowsOf(directory).length, 1, `after cacheness ${command}`)
      }
      const back = await Effect.runPromise(
        Effect.scoped(
          Effect.flatMap(Cache.Cache, (cache) => cache.get({ p: "cli" })).pipe(
            Effect.provide(Cache.layer({ directory, handlers: [points()], cleanupOnOpen: false }))
          )
        )
      )
      assert.deepStrictEqual(back, Option.some(new Point(1, 2)))
    } finally {
      fs.rmSync(directory, { recursive: true, force: true })
    }
  }, 120_000)
})

describe("custom handler decode receives an exact Uint8Array", () => {
  const floats = (format: string) =>
    Codec.handler({
      format,
      guard: (u): u is Float32Array => u instanceof Float32Array && (u as any).tagged === format,
      encode: (a) => new Uint8Array(new Float64Array(a).buffer),
      decode: (bytes) => {
        assert.strictEqual(Object.getPrototypeOf(bytes), Uint8Array.prototype, "a plain Uint8Array, not a Buffer")
        assert.strictEqual(bytes.byteOffset, 0)
        assert.strictEqual(bytes.buffer.byteLength, bytes.byteLength)
        // The idioms users write: both see exactly the payload.
        const viaSlice = new Float64Array(bytes.slice().buffer)
        const viaBuffer = new Float64Array(bytes.buffer)
        assert.deepStrictEqual([...viaSlice], [...viaBuffer])
        return Float32Array.from(viaSlice)
      }
    })
  const tagged = (n: number, fill: (i: number) => number, format: string) => {
    const a = Float32Array.from({ length: n }, (_, i) => fill(i))
    ;(a as any).tagged = format
    return a
  }

  it.scoped("inline, blob, raw and compressed payloads, SQLite and memory", () =>
    Effect.gen(function*() {
      const directory = yield* tempDir
      const cases = [
        ["raw-inline", 3, (i: number) => i + 0.5], // below the compression threshold: stored raw, inline
        ["raw-blob", 20_000, (i: number) => Math.sin(i) * 1e6], // incompressible: raw, in a blob
        ["lz4-blob", 20_000, (_: number) => 1] // compressible: decompressed into new memory
      ] as const
      for (
        const layer of [
          Cache.layer({
            directory,
            handlers: cases.map(([f]) => floats(f)),
            cleanupOnOpen: false
          }),
          Cache.layerMemory({ handlers: cases.map(([f]) => floats(f)) })
        ]
      ) {
        yield* Effect.gen(function*() {
          const cache = yield* Cache.Cache
          for (const [format, n, fill] of cases) {
            const value = tagged(n, fill, format)
            yield* cache.put({ format }, value)
            const back = Option.getOrThrow(yield* cache.get({ format })) as Float32Array
            assert.strictEqual(back.length, n)
            assert.deepStrictEqual([...back], [...value], format)
          }
        }).pipe(Effect.provide(layer))
      }
    }))

  it.effect("through the codec, from a Buffer view at an odd offset", () =>
    Effect.gen(function*() {
      const service = CodecDefault.make({ handlers: [floats("f")] })
      const encoded = yield* service.encode(tagged(3, (i) => i * 2, "f"))
      const padded = Buffer.alloc(encoded.bytes.byteLength + 3)
      padded.set(encoded.bytes, 3)
      const back = (yield* service.decode(padded.subarray(3))) as Float32Array
      assert.deepStrictEqual([...back], [0, 2, 4])
    }))
})
