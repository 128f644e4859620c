/**
 * Arrow tables (apache-arrow `Table`), stored as an Arrow IPC stream — schema, field and schema
 * metadata, dictionaries and null bitmaps included — compressed block by block like numeric arrays
 * (`../blocks.ts`).
 *
 * Arrow JS writes no IPC body compression, so the whole stream goes through the block compressor.
 * IPC lays every buffer out 8-byte aligned, and the columns that dominate real tables (int64 ids,
 * float64 values, timestamps) are 8 bytes wide, so an 8-byte shuffle over the stream gives LZ4 the
 * same runs it finds in numeric arrays (bench/formats.ts prints ratios with and without it).
 *
 * Reading is zero-copy over the decompressed stream: `tableFromIPC` keeps views into it.
 *
 * apache-arrow ships an ESM and a CommonJS build, and an app may hold a second copy: their
 * `Table[Symbol.hasInstance]` accepts each other's tables, but the `DataType`s are other classes,
 * and one build's IPC writer then emits a wrong schema for the other's table. So a table is
 * written by the build its types come from — the ESM build imported here or the CommonJS build of
 * the same package (loaded on first sight of one of its tables) — and any other table is refused
 * at put with a `CodecError`. The schema the stream declares is read back before it is stored (only
 * the schema message: cheap), so a put that succeeds reads back. Tables always come back as tables
 * of the ESM build.
 *
 * ```
 * payload   u8 container (0 = IPC stream) · block stream
 * ```
 *
 * @since 0.1.0
 */
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"
import * as BufferPool from "../../shared/bufferPool.js"
import * as Blocks from "../blocks.js"
import * as Compression from "../compression.js"
import { CodecError, makeHandler } from "../service.js"
import type { CompressionSettings, FormatHandler, FramedPayload } from "../service.js"

// The shuffle width applied to the IPC stream when shuffling is on.
const IPC_SHUFFLE_WIDTH = 8

/**
 * The Arrow IPC stream of a table as the pieces its writer emits — mostly views of the table's own
 * column buffers, so nothing is copied. `tableToIPC` joins them into one fresh buffer, which here
 * cost more than everything else a put does to a table (148–366 ms for 24 MB, against 1–13 ms to
 * collect the pieces: the cost of faulting in fresh memory).
 *
 * @since 0.1.0
 * @category encoding
 */
export class IpcPieces extends Arrow.RecordBatchStreamWriter {
  readonly pieces: Array<Uint8Array> = []
  byteLength = 0
  protected override _write(chunk: ArrayBufferView): this {
    if (this._started && chunk.byteLength > 0) {
      this.pieces.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
      this.byteLength += chunk.byteLength
      this._position += chunk.byteLength
    }
    return this
  }
  /** The stream of `table`, byte for byte what `tableToIPC(table, "stream")` returns. */
  static of(table: Arrow.Table): IpcPieces {
    const writer = new IpcPieces()
    writer.writeAll(table)
    writer.finish()
    return writer
  }
}

/**
 * An Arrow IPC stream as pieces (see `IpcPieces`).
 *
 * @since 0.1.0
 * @category encoding
 */
export interface Pieces {
  readonly pieces: ReadonlyArray<Uint8Array>
  readonly byteLength: number
}

type ArrowModule = typeof Arrow

/** The `IpcPieces` writer over another build of apache-arrow (its own writer classes). */
const piecesWriter = (arrow: ArrowModule) => {
  class Collect extends arrow.RecordBatchStreamWriter {
    readonly pieces: Array<Uint8Array> = []
    byteLength = 0
    protected override _write(chunk: ArrayBufferView): this {
      if (this._started && chunk.byteLength > 0) {
        this.pieces.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength))
        this.byteLength += chunk.byteLength
        this._position += chunk.byteLength
      }
      return this
    }
  }
  return (table: Arrow.Table): Pieces => {
    const writer = new Collect()
    writer.writeAll(table)
    writer.finish()
    return writer
  }
}

let commonJs: { readonly arrow: ArrowModule; readonly write: (table: Arrow.Table) => Pieces } | null | undefined

/** The CommonJS build of the apache-arrow imported here, loaded once; `null` when it cannot be. */
const loadCommonJs = () => {
  if (commonJs === undefined) {
    try {
      const arrow = createRequire(import.meta.url)("apache-arrow") as ArrowModule
      commonJs = arrow.Table === Arrow.Table ? null : { arrow, write: piecesWriter(arrow) }
    } catch {
      commonJs = null
    }
  }
  return commonJs
}

/**
 * Whether every type in the schema (children and dictionaries included) is a class of `arrow`. The
 * IPC writer dispatches on `DataType` classes, which (unlike `Table`, `RecordBatch`, `Data` and
 * `Vector`) have no cross-build `Symbol.hasInstance`: the types decide which build can write a table.
 */
const typesOf = (arrow: ArrowModule, type: Arrow.DataType): boolean =>
  type instanceof arrow.DataType &&
  (type.children ?? []).every((child: Arrow.Field) => typesOf(arrow, child.type)) &&
  (!arrow.DataType.isDictionary(type) || typesOf(arrow, type.dictionary))

const writtenBy = (arrow: ArrowModule, table: Arrow.Table) =>
  table.schema.fields.every((field) => typesOf(arrow, field.type))

const describeField = (field: Arrow.Field) => `${String(field.type)}${field.nullable ? "?" : ""}`

/** The schema message a stream starts with: continuation marker, i32 length, flatbuffer. */
const leadingSchema = (ipc: Pieces): Arrow.Schema => {
  const head: Array<Uint8Array> = []
  let have = 0
  let need = 8
  for (let i = 0; i < ipc.pieces.length && have < need; i++) {
    head.push(ipc.pieces[i]!)
    have += ipc.pieces[i]!.byteLength
    if (need === 8 && have >= 8) {
      const joined = Buffer.concat(head)
      need = 8 + joined.readInt32LE(4)
    }
  }
  const bytes = Buffer.concat(head)
  if (bytes.byteLength < need || bytes.readUInt32LE(0) !== 0xffffffff) {
    throw new TypeError("the Arrow IPC writer wrote no schema message")
  }
  const message = Arrow.Message.decode(bytes.subarray(8, need))
  if (!message.isSchema()) throw new TypeError("the Arrow IPC stream does not start with its schema")
  return message.header()
}

/**
 * The Arrow IPC stream of `table`, written by the build of apache-arrow its types come from and
 * checked to declare the table's schema. Throws a `TypeError` saying why for a table that cannot
 * be written faithfully: types from a copy of apache-arrow other than the two builds known here,
 * or from two copies at once.
 *
 * @since 0.1.0
 * @category encoding
 */
export const piecesOf = (table: Arrow.Table): Pieces => {
  let write: ((table: Arrow.Table) => Pieces) | undefined
  if (writtenBy(Arrow, table)) {
    write = IpcPieces.of
  } else {
    const cjs = loadCommonJs()
    if (cjs !== null && writtenBy(cjs.arrow, table)) write = cjs.write
  }
  if (write === undefined) {
    throw new TypeError(
      "the table's column types come from a copy of apache-arrow other than the one cacheness uses (its ESM or " +
        "CommonJS build), or from two copies at once, which cacheness cannot write faithfully; convert it first, e.g. " +
        "tableFromIPC(tableToIPC(table)) with tableFromIPC from cacheness's apache-arrow and tableToIPC from yours"
    )
  }
  const ipc = write(table)
  // The schema message leads the stream: reading it back is cheap and catches a writer that
  // misread the table's types.
  const written = leadingSchema(ipc).fields.map(describeField).join(", ")
  const expected = table.schema.fields.map(describeField).join(", ")
  if (written !== expected) {
    throw new TypeError(`the Arrow IPC writer declared the schema { ${written} } for a table of { ${expected} }`)
  }
  return ipc
}

const encodeWith = (table: Arrow.Table, policy: Blocks.BlockPolicy, headerRoom: number): FramedPayload => {
  const ipc = piecesOf(table)
  const out = new Blocks.Writer(BufferPool.take(headerRoom + 1 + Blocks.bound(ipc.byteLength)), headerRoom)
  out.u8(0)
  const compressed = Blocks.writeChunks(out, ipc.pieces, ipc.byteLength, IPC_SHUFFLE_WIDTH, policy)
  return {
    bytes: out.bytes.subarray(0, out.offset),
    codec: compressed ? policy.spec.codec : "none",
    rawBytes: ipc.byteLength
  }
}

const decodePayload = (payload: Uint8Array): Arrow.Table => {
  const input = new Blocks.Reader(payload, 0)
  const container = input.u8()
  if (container !== 0) throw new RangeError(`unknown container ${container}`)
  const rawLength = input.view.getFloat64(input.offset + 5, true)
  if (!Number.isSafeInteger(rawLength) || rawLength < 0) throw new RangeError(`bad stream length ${rawLength}`)
  const ipc = new Uint8Array(rawLength)
  Blocks.read(input, ipc)
  return Arrow.tableFromIPC(ipc)
}

const failure = (reason: CodecError["reason"], method: string, cause: unknown, what: string) =>
  new CodecError({
    reason,
    method,
    format: "arrow",
    description: `${what}: ${(cause as Error)?.message ?? String(cause)}`,
    cause
  })

const uncompressed: Blocks.BlockPolicy = {
  spec: Compression.byName.none,
  level: undefined,
  shuffle: false,
  minSize: 0,
  minSavings: 0
}

/**
 * The "arrow" format.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: FormatHandler<Arrow.Table> = makeHandler({
  format: "arrow",
  version: 1,
  kind: "table",
  guard: (value): value is Arrow.Table => value instanceof Arrow.Table,
  encode: (table) =>
    Effect.try({
      try: () => encodeWith(table, uncompressed, 0).bytes,
      catch: (cause) => failure("Unserializable", "Codec.encode", cause, "table could not be written as Arrow IPC")
    }),
  encodeFramed: (table, settings: CompressionSettings, headerRoom) =>
    Effect.try({
      try: () =>
        encodeWith(table, {
          spec: Compression.byName[settings.codec],
          level: settings.level,
          shuffle: settings.shuffle,
          minSize: settings.minSize,
          minSavings: settings.minSavings
        }, headerRoom),
      catch: (cause) => failure("Unserializable", "Codec.encode", cause, "table could not be written as Arrow IPC")
    }),
  retainsPayload: false,
  decode: (payload) => decodePayload(payload),
  corrupt: "Arrow payload does not decode"
})
