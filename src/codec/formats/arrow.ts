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
 * Container 2 (format version 3) adds one coding: a piece of 4- or 2-byte words that all fit in
 * their low byte or two (dictionary indices of fewer than 256 or 65,536 values, small counts) is
 * stored *narrowed*, as those low bytes only, and widened back on read by a typed-array `set`
 * (zero extension, native code, ~0.1 ms for 1M int32s). Shuffled, the same piece cost a get an
 * LZ4 decode of its zero planes and an unshuffle (1.3 ms for the 4 MB of indices); the
 * stored bytes are the same low bytes either way. It is lossless for any bytes — the words are
 * compared as words, not as a type — and a put scans the piece's words once (stopping at the first
 * word that does not fit) to choose it.
 *
 * Format version 4 adds another: a piece whose 8- or 4-byte words form an arithmetic sequence
 * (word i = first + i·step, modulo the word: row ids, counters, constant columns) is stored as its
 * first word and step and written back 16 bytes at a time (`../sequence.ts`): the 1M int64
 * ids cost a get 1.5 ms shuffled (an LZ4 decode of 8 MB of mostly zero planes and an unshuffle)
 * and ~0.35 ms so. A put compares each word with the one before, stopping at the first that does
 * not follow.
 *
 * ```
 * payload   u8 container (0 = IPC stream) · block stream
 *         | u8 container (1 = IPC stream in segments) · f64 stream length · u32 segments ·
 *           per segment: block stream (its own width and codec)
 *         | u8 container (2) · f64 stream length · u32 segments · per segment:
 *             u8 0 · block stream
 *           | u8 1 (narrowed) · u8 word width (2 or 4) · u8 bytes kept (1 or 2, fewer than the width) ·
 *             block stream of each word's low bytes (little-endian), in order
 *           | u8 2 (sequence, format version 4) · u8 word width (4 or 8) · f64 word count ·
 *             first word · step (each a little-endian word of that width)
 * ```
 * A narrowed or sequence segment starts at a multiple of its word width in the stream.
 *
 * @since 0.1.0
 */
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import { createRequire } from "node:module"
import * as BufferPool from "../../shared/bufferPool.js"
import * as Prefault from "../../shared/prefault.js"
import * as Blocks from "../blocks.js"
import * as Compression from "../compression.js"
import * as Lz4 from "../lz4.js"
import * as Sequence from "../sequence.js"
import { CodecError, makeHandler } from "../service.js"
import type { CompressionSettings, FormatHandler, FramedPayload, Placement } from "../service.js"
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
  /** 1: not shuffled; 0: stored raw. Of the narrowed bytes when `narrow` is set. */
  readonly width: number
  /**
   * Stored narrowed: words of `word` bytes, each as its low `keep` bytes (`pieces`: the one piece
   * to narrow; `byteLength`: its narrowed length).
   */
  readonly narrow?: { readonly word: 2 | 4; readonly keep: 1 | 2 } | undefined
  /** Stored as an arithmetic sequence of words (`pieces`: the one piece; format version 4). */
  readonly sequence?: Sequence.Sequence | undefined
}

/** Typed arrays see the IPC stream's little-endian words as numbers only on a little-endian host. */
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1

/**
 * How `piece`, at offset `at` in the stream, can be stored narrowed: 4-byte words that all fit in
 * one or two bytes, or 2-byte words that fit in one; `undefined` when none fits (or the host is
 * big-endian, or the piece is not aligned to its words in the stream and in memory).
 */
const narrowing = (piece: Uint8Array, at: number): Segment["narrow"] => {
  if (!LITTLE_ENDIAN) return undefined
  const length = piece.byteLength
  if (length % 4 === 0 && at % 4 === 0 && piece.byteOffset % 4 === 0) {
    const or = Sequence.orUpTo(piece, 4, 1 << 16)
    if (or < 1 << 8) return { word: 4, keep: 1 }
    if (or < 1 << 16) return { word: 4, keep: 2 }
  }
  if (length % 2 === 0 && at % 2 === 0 && piece.byteOffset % 2 === 0) {
    if (Sequence.orUpTo(piece, 2, 1 << 8) < 1 << 8) {
      return { word: 2, keep: 1 }
    }
  }
  return undefined
}

// Where a piece's low bytes are gathered for a put, touched once and reused up to a block's size.
let narrowScratch = new Uint8Array(0)

/** The low `keep` bytes of each word of `piece` (truncating typed-array `set`, native code). */
const narrowed = (piece: Uint8Array, { keep, word }: NonNullable<Segment["narrow"]>): Uint8Array => {
  const count = piece.byteLength / word
  const size = count * keep
  let out: Uint8Array
  if (size <= Blocks.BLOCK_SIZE) {
    if (narrowScratch.byteLength < size) narrowScratch = new Uint8Array(Math.max(size, 1 << 20)).fill(0)
    out = narrowScratch.subarray(0, size)
  } else {
    out = new Uint8Array(size)
  }
  const words = word === 4
    ? new Uint32Array(piece.buffer, piece.byteOffset, count)
    : new Uint16Array(piece.buffer, piece.byteOffset, count)
  if (keep === 1) out.set(words)
  else new Uint16Array(out.buffer, out.byteOffset, count).set(words)
  return out
}

/**
 * How a large piece is best coded, from LZ4 on three samples of it: the shuffle width that pays
 * (see `SHUFFLE_PAYS`), 1 for plain LZ4, or 0 for raw when neither saves `minSavings`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const probeWidth = (piece: Uint8Array, shuffleAllowed: boolean, minSavings: number): number =>
  probe(piece, shuffleAllowed, minSavings).width

/** `probeWidth`, with the stored size it expects as a fraction of the piece (1 when stored raw). */
const probe = (
  piece: Uint8Array,
  shuffleAllowed: boolean,
  minSavings: number
): { readonly width: number; readonly ratio: number } => {
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
  return bestSize <= probed * (1 - Math.max(minSavings, 0.01))
    ? { width: best, ratio: bestSize / probed }
    : { width: 0, ratio: 1 }
}

/**
 * A piece is stored narrowed when that stores at most this much more than coding it whole
 * (estimated by `probe`): its get is cheaper (a widening `set` against an LZ4 decode and an
 * unshuffle), and for dictionary indices both store the same low bytes. Narrowing an int64 column
 * (the 4-byte words then alternate with zero words) stores 3× more than shuffling it: not chosen.
 */
const NARROW_STORES = 1.05

/**
 * The stream cut into segments: each large piece alone (narrowed when that pays), the runs of
 * small pieces between grouped.
 */
const segmentsOf = (ipc: Pieces, shuffleAllowed: boolean, minSavings: number): Array<Segment> => {
  const segments: Array<Segment> = []
  let group: Segment | undefined
  let at = 0
  for (const piece of ipc.pieces) {
    if (piece.byteLength >= OWN_SEGMENT) {
      group = undefined
      const offset = at
      const sequence = Sequence.detect(piece, (width) => offset % width === 0)
      if (sequence !== undefined) {
        segments.push({ pieces: [piece], byteLength: piece.byteLength, width: 0, sequence })
        at += piece.byteLength
        continue
      }
      const whole = probe(piece, shuffleAllowed, minSavings)
      const how = narrowing(piece, at)
      // The narrowed bytes land in a reused scratch: probed here, narrowed again when written.
      const low = how === undefined ? undefined : narrowed(piece, how)
      const coded = low === undefined ? undefined : probe(low, shuffleAllowed && how!.keep > 1, minSavings)
      if (
        low !== undefined && coded !== undefined &&
        coded.ratio * low.byteLength <= NARROW_STORES * whole.ratio * piece.byteLength
      ) {
        segments.push({ pieces: [piece], byteLength: low.byteLength, width: coded.width, narrow: how })
      } else {
        segments.push({ pieces: [piece], byteLength: piece.byteLength, width: whole.width })
      }
    } else {
      if (group === undefined) segments.push(group = { pieces: [], byteLength: 0, width: 1 })
      group.pieces.push(piece)
      group.byteLength += piece.byteLength
    }
    at += piece.byteLength
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

/**
 * Container 2: the stream in segments, each its own block stream, narrowed where that pays (LZ4
 * only, see the module doc).
 */
const encodeSegments = (ipc: Pieces, policy: Blocks.BlockPolicy, headerRoom: number): FramedPayload => {
  const segments = segmentsOf(ipc, policy.shuffle, policy.minSavings)
  let room = headerRoom + 1 + 8 + 4
  for (const segment of segments) room += 3 + Blocks.bound(segment.byteLength) + 2 + 8 + 16
  const out = new Blocks.Writer(BufferPool.take(room), headerRoom)
  out.u8(2)
  out.f64(ipc.byteLength)
  out.u32(segments.length)
  // The value's size decides whether it is compressed at all, not each segment's.
  const within: Blocks.BlockPolicy = { ...policy, minSize: 0 }
  let compressed = false
  for (const segment of segments) {
    if (segment.sequence !== undefined) {
      const { first, step, width } = segment.sequence
      out.u8(2)
      out.u8(width)
      out.f64(segment.byteLength / width)
      for (const word of [first, step]) {
        if (width === 8) out.view.setBigUint64(out.offset, word, true)
        else out.view.setUint32(out.offset, Number(word), true)
        out.offset += width
      }
      compressed = true
      continue
    }
    if (segment.narrow === undefined) {
      out.u8(0)
    } else {
      out.u8(1)
      out.u8(segment.narrow.word)
      out.u8(segment.narrow.keep)
      compressed = true
    }
    const pieces = segment.narrow === undefined ? segment.pieces : [narrowed(segment.pieces[0]!, segment.narrow)]
    const coded = segment.width === 0
      ? Blocks.writeChunks(out, pieces, segment.byteLength, 1, STORE_RAW)
      : Blocks.writeChunks(out, pieces, segment.byteLength, segment.width, {
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

/** The stream length and segment count of a container-1 or -2 payload, read just past the container byte. */
const segmentsHeader = (input: Blocks.Reader) => {
  const length = streamLength(input.f64())
  return { length, segments: input.u32() }
}

/**
 * The raw length of the block stream at `input.offset`, checked to fit in what is left of the
 * stream: each block stream states it after its width (u8) and block size (u32).
 */
const segmentLength = (input: Blocks.Reader, at: number, total: number) => {
  if (input.offset + 13 > input.bytes.byteLength) throw new RangeError("truncated payload")
  const length = streamLength(input.view.getFloat64(input.offset + 5, true))
  if (at + length > total) throw new RangeError("segments hold more than the stream")
  return length
}

/** What a container-1 or -2 decode checks once its segments are read. */
const checkEnd = (input: Blocks.Reader, at: number, total: number) => {
  if (at !== total) throw new RangeError(`segments hold ${at} of the stream's ${total} bytes`)
  if (input.offset !== input.bytes.byteLength) throw new RangeError("bytes after the last segment")
}

/** A narrowed segment's word width, bytes kept and word count, checked against the stream. */
const narrowHeader = (input: Blocks.Reader, at: number, total: number) => {
  const word = input.u8()
  const keep = input.u8()
  if (!((word === 4 && (keep === 1 || keep === 2)) || (word === 2 && keep === 1))) {
    throw new RangeError(`bad narrowed segment: ${word}-byte words kept as ${keep}`)
  }
  if (at % word !== 0) throw new RangeError("narrowed segment not aligned to its words")
  const low = segmentLength(input, at, total)
  if (low % keep !== 0) throw new RangeError("narrowed segment holds part of a word")
  const count = low / keep
  if (at + count * word > total) throw new RangeError("segments hold more than the stream")
  return { word, keep, count } as const
}

/**
 * Widens `low` (each word's low `keep` bytes, in order) into `region`, `count` words of `word`
 * bytes. `low` may be the end of `region` itself: a typed-array `set` copies its source first
 * when the two share memory, and the big-endian byte loop runs front to back, which never
 * overwrites a word not yet read.
 */
const widen = (region: Uint8Array, low: Uint8Array, count: number, word: 2 | 4, keep: 1 | 2): void => {
  if (LITTLE_ENDIAN && (keep === 1 || low.byteOffset % 2 === 0)) {
    const { buffer, byteOffset } = region
    const words = word === 4 ? new Uint32Array(buffer, byteOffset, count) : new Uint16Array(buffer, byteOffset, count)
    words.set(keep === 1 ? low : new Uint16Array(low.buffer, low.byteOffset, count))
    return
  }
  for (let i = 0; i < count; i++) {
    const first = low[i * keep]!
    const second = keep === 2 ? low[i * keep + 1]! : 0
    region.fill(0, i * word, (i + 1) * word)
    region[i * word] = first
    region[i * word + 1] = second
  }
}

/**
 * The low bytes of a narrowed segment read in place when its block stream is one block stored
 * raw (incompressible indices: the usual case), which saves copying them into the result before
 * widening; `undefined` otherwise (`Blocks.read` then reads the stream, and reports damage).
 * The layout is `blocks.ts`'s: u8 width · u32 block size · f64 raw length · u8 codec · u32 length.
 */
const storedRaw = (input: Blocks.Reader, low: number): Uint8Array | undefined => {
  const at = input.offset
  const { bytes, view } = input
  if (at + 18 + low > bytes.byteLength) return undefined
  const blockSize = view.getUint32(at + 1, true)
  if (view.getUint8(at) === 0 || blockSize === 0 || blockSize < low) return undefined
  if (view.getUint8(at + 13) !== 0 || view.getUint32(at + 14, true) !== low) return undefined
  input.offset = at + 18 + low
  return bytes.subarray(at + 18, at + 18 + low)
}

/** A sequence segment (coding 2) written into `ipc` from `at`; returns its length in the stream. */
const readSequence = (input: Blocks.Reader, ipc: Uint8Array, at: number): number => {
  const width = input.u8()
  if (width !== 4 && width !== 8) throw new RangeError(`bad sequence segment: ${width}-byte words`)
  if (at % width !== 0) throw new RangeError("sequence segment not aligned to its words")
  const count = streamLength(input.f64())
  if (at + count * width > ipc.byteLength) throw new RangeError("segments hold more than the stream")
  const words = input.take(2 * width)
  const view = new DataView(words.buffer, words.byteOffset, words.byteLength)
  const first = width === 8 ? view.getBigUint64(0, true) : BigInt(view.getUint32(0, true))
  const step = width === 8 ? view.getBigUint64(8, true) : BigInt(view.getUint32(4, true))
  Sequence.write(ipc.subarray(at, at + count * width), { width, first, step }, count)
  return count * width
}

/** Reads the segment at `input` into `ipc` from `at`; returns its length in the stream. */
const readSegment = (input: Blocks.Reader, ipc: Uint8Array, at: number, container: number): number => {
  const coding = container === 2 ? input.u8() : 0
  if (coding === 0) {
    const length = segmentLength(input, at, ipc.byteLength)
    Blocks.read(input, ipc.subarray(at, at + length))
    return length
  }
  if (coding === 2) return readSequence(input, ipc, at)
  if (coding !== 1) throw new RangeError(`unknown segment coding ${coding}`)
  const { count, keep, word } = narrowHeader(input, at, ipc.byteLength)
  const region = ipc.subarray(at, at + count * word)
  const inPlace = storedRaw(input, count * keep)
  let low = region.subarray(count * (word - keep))
  if (inPlace === undefined) Blocks.read(input, low)
  // Two-byte halves are read as a Uint16Array, which needs them 2-aligned: else copied first.
  else if (keep === 2 && inPlace.byteOffset % 2 !== 0) low.set(inPlace)
  else low = inPlace
  widen(region, low, count, word, keep)
  return count * word
}

/** Container 1's or 2's segments read into `ipc` (the stream's exact length), one after the other. */
const readSegments = (input: Blocks.Reader, container: number, segments: number, ipc: Uint8Array): void => {
  let at = 0
  for (let i = 0; i < segments; i++) at += readSegment(input, ipc, at, container)
  checkEnd(input, at, ipc.byteLength)
}

const decodePayload = (payload: Uint8Array): Arrow.Table => {
  const input = new Blocks.Reader(payload, 0)
  const container = input.u8()
  if (container === 0) {
    const ipc = new Uint8Array(streamLength(input.view.getFloat64(input.offset + 5, true)))
    Blocks.read(input, ipc)
    return Arrow.tableFromIPC(ipc)
  }
  if (container !== 1 && container !== 2) throw new RangeError(`unknown container ${container}`)
  const { length, segments } = segmentsHeader(input)
  const ipc = new Uint8Array(BufferPool.result(length))
  readSegments(input, container, segments, ipc)
  return Arrow.tableFromIPC(ipc)
}

/** The smallest segment stored raw that `place` reads straight into the stream (smaller ones are copied). */
const PLACED_SEGMENT = 1 << 20

/**
 * Moves `input` past the block stream at its offset (its header, then each block's codec byte,
 * stored length and bytes), throwing `RangeError` where the bytes end first; returns its raw length.
 */
const skipStream = (input: Blocks.Reader): number => {
  input.u8()
  const blockSize = input.u32()
  const rawLength = streamLength(input.f64())
  if (blockSize === 0 && rawLength > 0) throw new RangeError("block stream with blocks of 0 bytes")
  for (let start = 0; start < rawLength; start += blockSize) {
    input.u8()
    input.take(input.u32())
  }
  return rawLength
}

/** Moves `input` past the segment at its offset (container 2); returns its length in the stream. */
const skipSegment = (input: Blocks.Reader): number => {
  const coding = input.u8()
  if (coding === 0) return skipStream(input)
  if (coding === 2) {
    const width = input.u8()
    const count = streamLength(input.f64())
    input.take(2 * width)
    return count * width
  }
  if (coding !== 1) throw new RangeError(`unknown segment coding ${coding}`)
  const word = input.u8()
  const keep = input.u8()
  if (keep === 0) throw new RangeError("narrowed segment keeps no bytes")
  return skipStream(input) / keep * word
}

/**
 * `FormatHandler.place`: a container-2 payload (format 3 and later) whose stream is large enough
 * for the pool is read into its own result (`BufferPool.readTarget`), and the first segment of
 * at least `PLACED_SEGMENT` bytes that it stores raw — found by walking the segments in `head` —
 * has its blocks read straight to their place in the stream (`Blocks.placeRaw`): a table's float
 * column is not copied on the way. The segments before it and the rest of the payload are read
 * into buffers of their own and decoded into the stream by `finish`, which parses the bytes as
 * read (the head only planned them) and checks that the placed segment is where and what the plan
 * said. Anything else is read whole.
 */
const place = (head: Uint8Array, length: number, version: number): Placement<Arrow.Table> | undefined => {
  if (version < 3) return undefined
  try {
    const input = new Blocks.Reader(head, 0)
    if (input.u8() !== 2) return undefined
    const { length: total, segments } = segmentsHeader(input)
    if (total < Prefault.MIN_SIZE) return undefined
    let at = 0
    for (let k = 0; k < segments; k++) {
      const start = input.offset
      const raw = storedRawAt(input.view, start)
      if (raw >= PLACED_SEGMENT && at + raw <= total) return placeSegment(head, length, total, start, at, raw, k)
      at += skipSegment(input)
      if (at > total) return undefined
    }
    return undefined
  } catch {
    return undefined
  }
}

/**
 * The raw length of the segment at `start` in `view` when it is a block stream (coding 0) whose
 * first block is stored raw, as `Blocks.placeRaw` wants it (its later blocks are checked after the
 * read); 0 otherwise, or where the head ends first. Layout as `storedRaw`'s, after the coding byte.
 */
const storedRawAt = (view: DataView, start: number): number => {
  if (start + 19 > view.byteLength || view.getUint8(start) !== 0 || view.getUint8(start + 1) === 0) return 0
  const blockSize = view.getUint32(start + 2, true)
  const raw = view.getFloat64(start + 6, true)
  if (blockSize === 0 || !Number.isSafeInteger(raw)) return 0
  return view.getUint8(start + 14) === 0 && view.getUint32(start + 15, true) === Math.min(blockSize, raw) ? raw : 0
}

/** `place`'s plan once segment `k`, at `start` in the payload and `at` in the stream, is chosen. */
const placeSegment = (
  head: Uint8Array,
  length: number,
  total: number,
  start: number,
  at: number,
  raw: number,
  k: number
): Placement<Arrow.Table> | undefined => {
  const { buffer, ready } = BufferPool.readTarget(total)
  const ipc = new Uint8Array(buffer)
  const input = new Blocks.Reader(head, start + 1)
  const stream = Blocks.placeRaw(input, ipc.subarray(at, at + raw))
  const restLength = length - (start + 1) - (stream?.length ?? 0)
  if (stream === undefined || restLength < 0) return undefined
  const before = new Uint8Array(start + 1)
  const rest = new Uint8Array(restLength)
  return {
    views: [before, ...stream.views, rest],
    ready,
    touched: ready !== undefined || BufferPool.prefaulted(buffer),
    finish: () => {
      const first = new Blocks.Reader(before, 0)
      if (first.u8() !== 2) throw new RangeError("container differs from the one planned from")
      const header = segmentsHeader(first)
      if (header.length !== total) throw new RangeError("stream length differs from the one planned from")
      let to = 0
      for (let i = 0; i < k; i++) to += readSegment(first, ipc, to, 2)
      if (to !== at || first.u8() !== 0 || first.offset !== before.byteLength) {
        throw new RangeError("segments differ from the ones planned from")
      }
      stream.check()
      to += raw
      const second = new Blocks.Reader(rest, 0)
      for (let i = k + 1; i < header.segments; i++) to += readSegment(second, ipc, to, 2)
      checkEnd(second, to, total)
      BufferPool.prepareNext(total)
      return Arrow.tableFromIPC(ipc)
    }
  }
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
  // 4: container 2 with sequence segments; 3 wrote container 2 without them, 2 container 1, 1
  // container 0 only; all still read.
  version: 4,
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
  place,
  decode: (payload) => decodePayload(payload),
  corrupt: "Arrow payload does not decode"
})
