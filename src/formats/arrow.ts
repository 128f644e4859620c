/**
 * Arrow tables (apache-arrow `Table`), stored as an Arrow IPC stream — schema, field and schema
 * metadata, dictionaries and null bitmaps included — compressed block by block like numeric arrays
 * (`internal/blocks.ts`).
 *
 * Arrow JS writes no IPC body compression, so the whole stream goes through the block compressor.
 * IPC lays every buffer out 8-byte aligned, and the columns that dominate real tables (int64 ids,
 * float64 values, timestamps) are 8 bytes wide, so an 8-byte shuffle over the stream gives LZ4 the
 * same runs it finds in numeric arrays (bench/formats.ts prints ratios with and without it).
 *
 * Reading is zero-copy over the decompressed stream: `tableFromIPC` keeps views into it.
 *
 * ```
 * payload   u8 container (0 = IPC stream) · block stream
 * ```
 *
 * @since 0.1.0
 */
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Blocks from "../internal/blocks.js"
import * as BufferPool from "../internal/bufferPool.js"
import * as Compression from "../internal/compression.js"
import { CodecError } from "../services/Codec.js"
import type { CompressionSettings, FormatHandler, FramedPayload } from "../services/Codec.js"

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

const encodeWith = (table: Arrow.Table, policy: Blocks.BlockPolicy, headerRoom: number): FramedPayload => {
  const ipc = IpcPieces.of(table)
  const out = new Blocks.Writer(BufferPool.take(headerRoom + 1 + Blocks.bound(ipc.byteLength)), headerRoom)
  out.u8(0)
  const compressed = Blocks.writeChunks(out, ipc.pieces, ipc.byteLength, IPC_SHUFFLE_WIDTH, policy)
  return { bytes: out.bytes.subarray(0, out.offset), codec: compressed ? policy.spec.codec : "none", rawBytes: ipc.byteLength }
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
  new CodecError({ reason, method, format: "arrow", description: `${what}: ${(cause as Error)?.message ?? String(cause)}`, cause })

const uncompressed: Blocks.BlockPolicy = { spec: Compression.byName.none, level: undefined, shuffle: false, minSize: 0, minSavings: 0 }

/**
 * The "arrow" format.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: FormatHandler<Arrow.Table> = {
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
  decode: (payload) =>
    Effect.try({
      try: () => decodePayload(payload),
      catch: (cause) => failure("Corrupt", "Codec.decode", cause, "Arrow payload does not decode")
    })
}
