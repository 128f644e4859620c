// A large Arrow table's first big segment stored raw (a float column: nothing to compress) is read
// straight into the IPC stream the table is made from (`Codec.place` of the arrow format); the
// segments before it and after it are read into their own buffers and decoded by `finish`. The
// checksum still decides the read first; a layout other than the one planned, damage the checksum
// cannot see (checksums off) or a short file is a miss, never a wrong table.
import { assert, describe, it } from "@effect/vitest"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as CodecDefault from "../src/codec/registry.js"
import { Cache } from "../src/index.js"
import * as HasherXxhash from "../src/key/xxhash.js"
import * as MetadataStoreMemory from "../src/metadata/memory.js"
import { watchedStore } from "./support/placedStore.js"

const tempDirectory = Effect.acquireRelease(
  Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-table-placed-"))),
  (directory) => Effect.sync(() => fs.rmSync(directory, { recursive: true, force: true }))
)

/** A cache whose file-system store records whether each read was placed, and into how many views. */
const cacheAt = (directory: string, calls: Array<string>, verifyIntegrity = true) =>
  Effect.provide(
    Cache.Cache,
    Cache.layerFromServices({ verifyIntegrity }).pipe(
      Layer.provide(
        Layer.mergeAll(
          HasherXxhash.layer,
          CodecDefault.layer(),
          MetadataStoreMemory.layer,
          watchedStore(directory, calls)
        )
      )
    )
  )

/** Deterministic noise in [0, 1000): a float column LZ4 cannot shrink, so it is stored raw. */
const noise = (rows: number, seed: number) => {
  let x = seed >>> 0 || 1
  const next = () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 2 ** 32
  }
  // Two draws a value, so every mantissa bit is noise.
  return Float64Array.from({ length: rows }, () => (next() + next() / 2 ** 32) * 1000)
}

/** int64 ids (a sequence segment), `floats` noisy float64 columns and a dictionary column. */
const tableOf = (rows: number, floats: number) => {
  const columns: Record<string, Arrow.Vector> = {
    id: Arrow.makeVector(BigInt64Array.from({ length: rows }, (_, i) => BigInt(i)))
  }
  for (let f = 0; f < floats; f++) columns[`value${f}`] = Arrow.makeVector(noise(rows, 7 + f))
  const type = new Arrow.Dictionary(new Arrow.Utf8(), new Arrow.Int32())
  const dictionary = Arrow.vectorFromArray(["red", "green", "blue"], new Arrow.Utf8())
  const indices = Int32Array.from({ length: rows }, (_, i) => (i * 7) % 3)
  columns["category"] = Arrow.makeVector(Arrow.makeData({ type, length: rows, data: indices, dictionary }))
  return new Arrow.Table(columns)
}

const sameTable = (actual: unknown, expected: Arrow.Table) => {
  assert.instanceOf(actual, Arrow.Table)
  assert.isTrue(
    Buffer.from(Arrow.tableToIPC(actual as Arrow.Table)).equals(Buffer.from(Arrow.tableToIPC(expected))),
    "tables differ"
  )
}

const blobFile = (directory: string) => {
  const files = (fs.readdirSync(path.join(directory, "blobs"), { recursive: true }) as Array<string>)
    .map((name) => path.join(directory, "blobs", name))
    .filter((file) => fs.statSync(file).isFile())
  assert.strictEqual(files.length, 1)
  return files[0]!
}

/** Where the first float column's bytes start in the blob (its block header is the 5 bytes before). */
const floatsAt = (file: string, table: Arrow.Table) => {
  const column = table.getChild("value0")!.data[0]!.values as Float64Array
  const at = fs.readFileSync(file).indexOf(Buffer.from(column.buffer, column.byteOffset, 64))
  assert.isAbove(at, 0)
  return at
}

const patch = (file: string, at: number, bytes: ArrayLike<number>) => {
  const fd = fs.openSync(file, "r+")
  fs.writeSync(fd, Buffer.from(bytes as Array<number>), 0, bytes.length, at)
  fs.closeSync(fd)
}

const ROWS = 800_000

describe("table gets read their float column straight into the stream", () => {
  it.scoped("the first large raw segment is placed; the segments around it, a second float column included, decode", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls)
      const one = tableOf(ROWS * 3 / 2, 1)
      const two = tableOf(ROWS, 2)
      yield* cache.put({ k: "one" }, one)
      yield* cache.put({ k: "two" }, two)
      sameTable((yield* cache.get({ k: "one" })).pipe(Option.getOrThrow), one)
      const first = (yield* cache.get({ k: "two" })).pipe(Option.getOrThrow) as Arrow.Table
      const second = (yield* cache.get({ k: "two" })).pipe(Option.getOrThrow) as Arrow.Table
      sameTable(first, two)
      sameTable(second, two)
      // The cache header; the segments before; the placed stream's header and its one block; the rest.
      assert.deepStrictEqual(calls, ["placed 5", "placed 5", "placed 5"])
      // Each get owns its memory.
      const values = first.getChild("value1")!.data[0]!.values as Float64Array
      values[0] = -1
      assert.notStrictEqual((second.getChild("value1")!.data[0]!.values as Float64Array)[0], -1)
    }))

  it.scoped("a table with nothing large stored raw, or too small, is read whole", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls)
      // Compressible columns only: the float column is a ramp of few distinct values.
      const smooth = new Arrow.Table({
        id: Arrow.makeVector(BigInt64Array.from({ length: ROWS * 2 }, (_, i) => BigInt(i))),
        value: Arrow.makeVector(Float64Array.from({ length: ROWS * 2 }, (_, i) => Math.floor(i / 4096)))
      })
      yield* cache.put({ k: "smooth" }, smooth)
      sameTable((yield* cache.get({ k: "smooth" })).pipe(Option.getOrThrow), smooth)
      const small = tableOf(300_000, 1)
      yield* cache.put({ k: "small" }, small)
      sameTable((yield* cache.get({ k: "small" })).pipe(Option.getOrThrow), small)
      // Blobs under HASH_WHILE_READING never ask.
      assert.deepStrictEqual(calls, ["get", "get"])
      // Large, but every float column under PLACED_SEGMENT (1 MiB): the plan declines, the read is whole.
      const narrow: Record<string, Arrow.Vector> = {}
      for (let c = 0; c < 12; c++) narrow[`c${c}`] = Arrow.makeVector(noise(120_000, 3 + c))
      const many = new Arrow.Table(narrow)
      yield* cache.put({ k: "many" }, many)
      sameTable((yield* cache.get({ k: "many" })).pipe(Option.getOrThrow), many)
      assert.deepStrictEqual(calls, ["get", "get", "declined"])
    }))

  it.scoped("with checksums, damage to the placed column, before it or after it is a miss and the entry goes", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls)
      const table = tableOf(ROWS, 2)
      const damage = [
        (file: string) => patch(file, floatsAt(file, table) + 4096, [0x55, 0xaa]),
        (file: string) => patch(file, floatsAt(file, table) - 5, [1]),
        (file: string) => patch(file, fs.statSync(file).size - 9, [0xff]),
        (file: string) => fs.truncateSync(file, fs.statSync(file).size - 100)
      ]
      for (const [n, harm] of damage.entries()) {
        yield* cache.put({ k: n }, table)
        harm(blobFile(directory))
        assert.isTrue(Option.isNone(yield* cache.get({ k: n })), `damage ${n}`)
        assert.strictEqual((yield* cache.list()).length, 0)
      }
      // Placed, except where the damage is in the head the plan is made from, or the file is not the
      // size the entry says (declined before the codec is asked).
      assert.deepStrictEqual(calls, ["placed 5", "declined", "placed 5", "declined"])
    }))

  it.scoped("without checksums, a layout that is not the one planned is a miss, never a wrong table", () =>
    Effect.gen(function*() {
      const directory = yield* tempDirectory
      const calls: Array<string> = []
      const cache = yield* cacheAt(directory, calls, false)
      const table = tableOf(ROWS, 2)
      const damage = [
        // The placed block's codec byte: no longer stored raw.
        (file: string) => patch(file, floatsAt(file, table) - 5, [1]),
        // Its stored length.
        (file: string) => patch(file, floatsAt(file, table) - 4, [0, 0, 0, 1]),
        // The last byte: bytes after the last segment, or a segment that reads past the end.
        (file: string) => fs.appendFileSync(file, Buffer.from([0]))
      ]
      for (const [n, harm] of damage.entries()) {
        yield* cache.put({ k: n }, table)
        harm(blobFile(directory))
        assert.isTrue(Option.isNone(yield* cache.get({ k: n })), `damage ${n}`)
        assert.strictEqual((yield* cache.list()).length, 0)
      }
      // A float column of two 16 MiB blocks: the second block's header lies past the head, so only
      // `finish` sees it — not stored raw, or another length, is a miss.
      const long = tableOf(2_300_000, 1)
      const secondHeader = (file: string) => floatsAt(file, long) + 16 * 1024 * 1024
      for (const [n, bytes] of [[1], [0, 0, 0, 0, 1]].entries()) {
        yield* cache.put({ k: `long${n}` }, long)
        patch(blobFile(directory), secondHeader(blobFile(directory)), bytes)
        assert.isTrue(Option.isNone(yield* cache.get({ k: `long${n}` })), `second block header ${n}`)
        assert.strictEqual((yield* cache.list()).length, 0)
      }
      assert.deepStrictEqual(calls.slice(-2), ["placed 7", "placed 7"])
      yield* cache.put({ k: "long" }, long)
      sameTable((yield* cache.get({ k: "long" })).pipe(Option.getOrThrow), long)
      yield* cache.invalidate({ k: "long" })
      yield* cache.put({ k: "intact" }, table)
      sameTable((yield* cache.get({ k: "intact" })).pipe(Option.getOrThrow), table)
      assert.deepStrictEqual(calls.slice(-1), ["placed 5"])
    }))
})
