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
 * One block stream over the whole IPC stream (container 0, all that version 1 wrote) paid for the
 * shuffle of every byte, twice per round trip, whether it helped or not: a column of random
 * float64 values shrinks by 12% shuffled and not at all plain, and the unshuffle was most of a
 * get. So with LZ4 (the default) the stream is cut into segments (container 1): each piece the
 * writer emits of at least `OWN_SEGMENT` bytes — in practice one column buffer — is a segment of
 * its own, coded as a probe of three samples says pays (shuffled at the width that compresses
 * best, plain LZ4, or raw); the pieces between (messages, padding, small buffers) are grouped in
 * unshuffled segments. The other codecs keep container 0.
 *
 * ```
 * payload   u8 container (0 = IPC stream) · block stream
 *         | u8 container (1 = IPC stream in segments) · f64 stream length · u32 segments ·
 *           per segment: block stream (its own width and codec)
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
import * as Lz4 from "../lz4.js"
import { CodecError, makeHandler } from "../service.js"
import type { CompressionSettings, FormatHandler, FramedPayload } from "../service.js"
import { shuffle } from "../shuffle.js"

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

/** Pieces at least this long are segments of their own, with their own coding. */
const OWN_SEGMENT = 64 << 10
/** Bytes per probe sample; a piece is probed at its start, middle and end. */
const SAMPLE = 16 << 10
/** Widths a piece may be shuffled at, widest first (the element widths of Arrow's fixed-width buffers). */
const WIDTHS = [8, 4, 2] as const
/**
 * Shuffling must save this fraction of a piece beyond plain LZ4 to be chosen: its unshuffle costs
 * a get about as much as reading and checksumming a quarter of the piece more (bench/formats.ts:
 * an int64 id column saves 49%, dictionary indices 15%, random float64 values 12%).
 */
const SHUFFLE_PAYS = 0.25

// Scratch of the probes, touched once and reused (encodes never nest).
let probeIn = new Uint8Array(0)
let probeOut = new Uint8Array(0)

/** A segment of the stream: consecutive pieces and how they are coded. */
interface Segment {
  readonly pieces: Array<Uint8Array>
  byteLength: number
  /** 1: not shuffled; 0: stored raw. */
  readonly width: number
}

/**
 * How a large piece is best coded, from LZ4 on three samples of it: the shuffle width that pays
 * (see `SHUFFLE_PAYS`), 1 for plain LZ4, or 0 for raw when neither saves `minSavings`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const probeWidth = (piece: Uint8Array, shuffleAllowed: boolean, minSavings: number): number => {
  const sample = Math.min(SAMPLE, piece.byteLength - (piece.byteLength % 8))
  const last = piece.byteLength - sample
  // 8-aligned, so a sample's elements line up with the piece's (its buffers are 8-aligned).
  const starts = [0, Math.floor(last / 16) * 8, Math.floor(last / 8) * 8]
  if (probeIn.byteLength < sample) probeIn = new Uint8Array(sample)
  if (probeOut.byteLength < Lz4.bound(sample)) probeOut = new Uint8Array(Lz4.bound(sample))
  const sizeAt = (width: number) => {
    let size = 0
    for (const start of starts) {
      const bytes = piece.subarray(start, start + sample)
      let input = bytes
      if (width > 1) {
        input = probeIn.subarray(0, sample)
        shuffle(bytes, input, width)
      }
      const length = Lz4.compress(input, probeOut, 0, probeOut.byteLength)
      size += length < 0 ? sample : length
    }
    return size
  }
  const probed = sample * starts.length
  let best = 1
  let bestSize = sizeAt(1)
  if (shuffleAllowed) {
    for (const width of WIDTHS) {
      if (piece.byteLength % width !== 0) continue
      const size = sizeAt(width)
      if (size <= bestSize - SHUFFLE_PAYS * probed && (best === 1 || size < bestSize)) {
        best = width
        bestSize = size
      }
    }
  }
  return bestSize <= probed * (1 - Math.max(minSavings, 0.01)) ? best : 0
}

/** The stream cut into segments: each large piece alone, the runs of small pieces between grouped. */
const segmentsOf = (ipc: Pieces, shuffleAllowed: boolean, minSavings: number): Array<Segment> => {
  const segments: Array<Segment> = []
  let group: Segment | undefined
  for (const piece of ipc.pieces) {
    if (piece.byteLength >= OWN_SEGMENT) {
      group = undefined
      segments.push({
        pieces: [piece],
        byteLength: piece.byteLength,
        width: probeWidth(piece, shuffleAllowed, minSavings)
      })
    } else {
      if (group === undefined) segments.push(group = { pieces: [], byteLength: 0, width: 1 })
      group.pieces.push(piece)
      group.byteLength += piece.byteLength
    }
  }
  return segments
}

const STORE_RAW: Blocks.BlockPolicy = {
  spec: Compression.byName.none,
  level: undefined,
  shuffle: false,
  minSize: 0,
  minSavings: 0
}

/** Container 1: the stream in segments, each its own block stream (LZ4 only, see the module doc). */
const encodeSegments = (ipc: Pieces, policy: Blocks.BlockPolicy, headerRoom: number): FramedPayload => {
  const segments = segmentsOf(ipc, policy.shuffle, policy.minSavings)
  let room = headerRoom + 1 + 8 + 4
  for (const segment of segments) room += Blocks.bound(segment.byteLength)
  const out = new Blocks.Writer(BufferPool.take(room), headerRoom)
  out.u8(1)
  out.f64(ipc.byteLength)
  out.u32(segments.length)
  // The value's size decides whether it is compressed at all, not each segment's.
  const within: Blocks.BlockPolicy = { ...policy, minSize: 0 }
  let compressed = false
  for (const segment of segments) {
    const coded = segment.width === 0
      ? Blocks.writeChunks(out, segment.pieces, segment.byteLength, 1, STORE_RAW)
      : Blocks.writeChunks(out, segment.pieces, segment.byteLength, segment.width, {
        ...within,
        shuffle: segment.width > 1
      })
    if (coded) compressed = true
  }
  return {
    bytes: out.bytes.subarray(0, out.offset),
    codec: compressed ? policy.spec.codec : "none",
    rawBytes: ipc.byteLength
  }
}

const encodeWith = (table: Arrow.Table, policy: Blocks.BlockPolicy, headerRoom: number): FramedPayload => {
  const ipc = piecesOf(table)
  if (policy.spec.codec === "lz4" && ipc.byteLength >= policy.minSize) return encodeSegments(ipc, policy, headerRoom)
  const out = new Blocks.Writer(BufferPool.take(headerRoom + 1 + Blocks.bound(ipc.byteLength)), headerRoom)
  out.u8(0)
  const compressed = Blocks.writeChunks(out, ipc.pieces, ipc.byteLength, IPC_SHUFFLE_WIDTH, policy)
  return {
    bytes: out.bytes.subarray(0, out.offset),
    codec: compressed ? policy.spec.codec : "none",
    rawBytes: ipc.byteLength
  }
}

const streamLength = (length: number) => {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`bad stream length ${length}`)
  return length
}

const decodePayload = (payload: Uint8Array): Arrow.Table => {
  const input = new Blocks.Reader(payload, 0)
  const container = input.u8()
  if (container === 0) {
    const ipc = new Uint8Array(streamLength(input.view.getFloat64(input.offset + 5, true)))
    Blocks.read(input, ipc)
    return Arrow.tableFromIPC(ipc)
  }
  if (container !== 1) throw new RangeError(`unknown container ${container}`)
  const ipc = new Uint8Array(BufferPool.result(streamLength(input.f64())))
  const segments = input.u32()
  let at = 0
  for (let i = 0; i < segments; i++) {
    // Each block stream states its raw length after its width (u8) and block size (u32).
    if (input.offset + 13 > payload.byteLength) throw new RangeError("truncated payload")
    const length = streamLength(input.view.getFloat64(input.offset + 5, true))
    if (at + length > ipc.byteLength) throw new RangeError("segments hold more than the stream")
    Blocks.read(input, ipc.subarray(at, at + length))
    at += length
  }
  if (at !== ipc.byteLength) throw new RangeError(`segments hold ${at} of the stream's ${ipc.byteLength} bytes`)
  if (input.offset !== payload.byteLength) throw new RangeError("bytes after the last segment")
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
  // 2: container 1 (segments); version 1 wrote container 0 only, which still reads.
  version: 2,
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
