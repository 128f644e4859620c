/**
 * Arrow tables (apache-arrow `Table`) stored as Parquet, when the cache is configured with
 * `tables: "parquet"`. Reading does not depend on that setting: a stored value's header says
 * "parquet" or "arrow", and both handlers are always registered.
 *
 * The library is parquet-wasm (Kyle Barron's build of arrow-rs's `parquet` crate for WebAssembly,
 * MIT/Apache-2.0): Arrow IPC in, Parquet out and back, with the Arrow schema embedded in the file
 * (`ARROW:schema`), so field types, nullability, dictionaries and schema/field metadata come back
 * as they went in. It was measured against DuckDB's Parquet writer (already a dependency, through
 * appenders and `COPY … TO`) on the benchmark's 1,000,000-row table: parquet-wasm wrote ~10–20×
 * faster and read ~50–100× faster, and DuckDB loses Arrow types and metadata on the way
 * (docs/FORMATS.md has the figures). It has no native binary and no install script; the 5 MB
 * WebAssembly module is compiled on first use (~0.3 s), never at import.
 *
 * Encodings are chosen per column from the Arrow schema rather than left to the writer's
 * dictionary-first default: integer, date, time and timestamp columns are written
 * DELTA_BINARY_PACKED and float32/float64 columns BYTE_STREAM_SPLIT (Parquet's byte shuffle;
 * off when `shuffle` is false), without dictionary attempts. On the benchmark table that stores
 * 0.25 of the logical size instead of 0.43 and writes ~2× faster. Statistics are not written: no
 * reader of a cache entry filters by them. Pages are compressed with the table kind's codec (lz4
 * → LZ4_RAW, zstd — available here even on Node 20 —, gzip, brotli, none); Parquet codecs take no
 * level through parquet-wasm, so `level` is ignored.
 *
 * Tables Parquet cannot hold — union columns, month-day-nano intervals — are declined by the
 * guard and stored as Arrow IPC (`arrow.ts`) instead.
 *
 * ```
 * payload   u8 container (0 = Parquet file) · f64 row count · Parquet file
 * ```
 * The row count lets the reader ask for one record batch of exactly that many rows.
 *
 * @since 0.1.0
 */
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"
import * as BufferPool from "../../shared/bufferPool.js"
import * as Blocks from "../blocks.js"
import { CodecError, makeHandler } from "../service.js"
import type { CompressionCodec, CompressionSettings, FormatHandler, FramedPayload } from "../service.js"
import { piecesOf } from "./arrow.js"

type ParquetWasm = typeof import("parquet-wasm")

let loaded: ParquetWasm | Error | undefined

/**
 * parquet-wasm, loaded (and its WebAssembly compiled) on first call; an `Error` when it cannot be
 * loaded. Synchronous, so decoding stays on the cache's synchronous fast path.
 *
 * @since 0.1.0
 * @category loaders
 */
export const load = (): ParquetWasm | Error => {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)("parquet-wasm") as ParquetWasm
    } catch (cause) {
      loaded = cause instanceof Error ? cause : new Error(String(cause))
    }
  }
  return loaded
}

const PAYLOAD_HEADER = 1 + 8

// parquet-wasm's `Compression` enum values (UNCOMPRESSED 0, GZIP 2, BROTLI 3, ZSTD 5, LZ4_RAW 6).
const parquetCodec: Readonly<Record<CompressionCodec, number>> = { none: 0, gzip: 2, brotli: 3, zstd: 5, lz4: 6 }

/**
 * Codecs this format applies itself, inside the Parquet pages: all of them, zstd included.
 *
 * @since 0.1.0
 * @category constants
 */
export const codecs: ReadonlyArray<CompressionCodec> = ["lz4", "zstd", "gzip", "brotli", "none"]

/**
 * Whether Parquet can hold every column of `schema` (no unions, no month-day-nano intervals,
 * at any depth).
 *
 * @since 0.1.0
 * @category guards
 */
export const canHold = (schema: Arrow.Schema): boolean => schema.fields.every((field) => typeHeld(field.type))

const typeHeld = (type: Arrow.DataType): boolean => {
  if (Arrow.DataType.isUnion(type)) return false
  if (Arrow.DataType.isInterval(type) && type.unit === Arrow.IntervalUnit.MONTH_DAY_NANO) return false
  if (Arrow.DataType.isDictionary(type)) return typeHeld(type.dictionary)
  return (type.children ?? []).every((child: Arrow.Field) => typeHeld(child.type))
}

/** The encoding a top-level column gets instead of the dictionary-first default, if any. */
const encodingOf = (pq: ParquetWasm, type: Arrow.DataType, shuffle: boolean): number | undefined => {
  if (
    Arrow.DataType.isInt(type) || Arrow.DataType.isDate(type) || Arrow.DataType.isTime(type) ||
    Arrow.DataType.isTimestamp(type)
  ) {
    return pq.Encoding.DELTA_BINARY_PACKED
  }
  if (Arrow.DataType.isFloat(type) && type.precision !== Arrow.Precision.HALF && shuffle) {
    return pq.Encoding.BYTE_STREAM_SPLIT
  }
  return undefined
}

const writerProperties = (pq: ParquetWasm, schema: Arrow.Schema, settings: CompressionSettings) => {
  let builder = new pq.WriterPropertiesBuilder()
    .setCompression(parquetCodec[settings.codec])
    .setWriterVersion(pq.WriterVersion.V2)
    .setStatisticsEnabled(pq.EnabledStatistics.None)
  for (const field of schema.fields) {
    const encoding = encodingOf(pq, field.type, settings.shuffle)
    if (encoding !== undefined) {
      builder = builder.setColumnDictionaryEnabled(field.name, false).setColumnEncoding(field.name, encoding)
    }
  }
  return builder.build()
}

const loadOrThrow = (): ParquetWasm => {
  const pq = load()
  if (pq instanceof Error) throw new Error(`parquet-wasm could not be loaded: ${pq.message}`)
  return pq
}

const encodeWith = (table: Arrow.Table, settings: CompressionSettings, headerRoom: number): FramedPayload => {
  const pq = loadOrThrow()
  // parquet-wasm takes the IPC stream as one buffer, which it copies into WebAssembly memory: join
  // the pieces in a pooled buffer (touched memory after the first put) and give it straight back.
  const pieces = piecesOf(table)
  const ipc = BufferPool.take(pieces.byteLength)
  let at = 0
  for (const piece of pieces.pieces) {
    ipc.set(piece, at)
    at += piece.byteLength
  }
  const wasmTable = pq.Table.fromIPCStream(ipc)
  BufferPool.give(ipc)
  const file = pq.writeParquet(wasmTable, writerProperties(pq, table.schema, settings))
  const out = new Blocks.Writer(BufferPool.take(headerRoom + PAYLOAD_HEADER + file.byteLength), headerRoom)
  out.u8(0)
  out.f64(table.numRows)
  out.raw(file)
  return { bytes: out.bytes, codec: settings.codec, rawBytes: pieces.byteLength }
}

// One record batch per table, as written; capped so a corrupt row count cannot ask for more.
const MAX_BATCH_ROWS = 1 << 30

const decodePayload = (payload: Uint8Array): Arrow.Table => {
  const input = new Blocks.Reader(payload, 0)
  const container = input.u8()
  if (container !== 0) throw new RangeError(`unknown container ${container}`)
  const rows = input.f64()
  if (!Number.isSafeInteger(rows) || rows < 0) throw new RangeError(`bad row count ${rows}`)
  const pq = load()
  if (pq instanceof Error) throw pq
  const file = payload.subarray(input.offset)
  const table = pq.readParquet(file, { batchSize: Math.max(1, Math.min(rows, MAX_BATCH_ROWS)) })
  return Arrow.tableFromIPC(table.intoIPCStream())
}

const failure = (reason: CodecError["reason"], method: string, cause: unknown, what: string) =>
  new CodecError({
    reason,
    method,
    format: "parquet",
    description: `${what}: ${(cause as Error)?.message ?? String(cause)}`,
    cause
  })

const uncompressed: CompressionSettings = { codec: "none", level: undefined, shuffle: true, minSize: 0, minSavings: 0 }

/** `decodePayload` once parquet-wasm is known to load: a process without it cannot read the format. */
const decodeLoaded = (payload: Uint8Array): Effect.Effect<Arrow.Table, CodecError> => {
  const pq = load()
  if (pq instanceof Error) {
    return Effect.fail(
      new CodecError({
        reason: "UnknownFormat",
        method: "Codec.decode",
        format: "parquet",
        description: `stored as Parquet, but parquet-wasm could not be loaded: ${pq.message}`
      })
    )
  }
  return Effect.try({
    try: () => decodePayload(payload),
    catch: (cause) => failure("Corrupt", "Codec.decode", cause, "Parquet payload does not decode")
  })
}

/**
 * The "parquet" format.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: FormatHandler<Arrow.Table> = makeHandler({
  format: "parquet",
  version: 1,
  kind: "table",
  codecs,
  guard: (value): value is Arrow.Table => value instanceof Arrow.Table && canHold(value.schema),
  encode: (table) =>
    Effect.try({
      try: () => encodeWith(table, uncompressed, 0).bytes,
      catch: (cause) => failure("Unserializable", "Codec.encode", cause, "table could not be written as Parquet")
    }),
  encodeFramed: (table, settings, headerRoom) =>
    Effect.try({
      try: () => encodeWith(table, settings, headerRoom),
      catch: (cause) => failure("Unserializable", "Codec.encode", cause, "table could not be written as Parquet")
    }),
  decode: decodePayload,
  decodeEffect: decodeLoaded
})
