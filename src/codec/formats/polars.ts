/**
 * nodejs-polars `DataFrame` and `Series`, when the package is installed (an optional peer
 * dependency). Stored as Arrow IPC written by Polars itself, compressed block by block with an
 * 8-byte shuffle like Arrow tables (`arrow.ts`).
 *
 * Nothing here imports nodejs-polars eagerly: loading it costs ~100 ms and a native binary, which
 * a cache that never sees a DataFrame should not pay. Recognising a value needs no module (a
 * DataFrame tags itself `[object DataFrame]`; a Series carries its native handle `_s`), writing one
 * uses the value's own `writeIPC`, and only reading imports the package — once, on demand. When it
 * is absent, no Polars value can exist to be stored, and reading one stored by another process is
 * a `CodecError` "UnknownFormat": the cache treats it as a miss and logs a warning.
 *
 * ```
 * payload   u8 shape (0 DataFrame, 1 Series) · block stream of the IPC file
 * ```
 *
 * With `tables: "parquet"` they are written as Parquet by Polars itself instead (format
 * "polars-parquet"; pages compressed with the table kind's codec, zstd included, level ignored):
 *
 * ```
 * payload   u8 shape (0 DataFrame, 1 Series) · Parquet file
 * ```
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as BufferPool from "../../shared/bufferPool.js"
import * as Blocks from "../blocks.js"
import * as Compression from "../compression.js"
import { CodecError, makeHandler as makeFormatHandler } from "../service.js"
import type { CompressionSettings, FormatHandler, FramedPayload } from "../service.js"

/**
 * The part of a Polars DataFrame this format uses.
 *
 * @since 0.1.0
 * @category models
 */
export interface DataFrameLike {
  readonly writeIPC: () => Uint8Array
  readonly writeParquet: (options?: { readonly compression?: string }) => Uint8Array
  readonly getColumns: () => ReadonlyArray<unknown>
}

/**
 * The part of a Polars Series this format uses.
 *
 * @since 0.1.0
 * @category models
 */
export interface SeriesLike {
  readonly toFrame: () => DataFrameLike
}

/**
 * The part of the nodejs-polars module this format uses.
 *
 * @since 0.1.0
 * @category models
 */
export interface PolarsModule {
  readonly readIPC: (bytes: Buffer) => DataFrameLike
  readonly readParquet: (bytes: Buffer) => DataFrameLike
}

/**
 * Loads nodejs-polars; `undefined` when it is not installed.
 *
 * @since 0.1.0
 * @category models
 */
export type Loader = () => Promise<PolarsModule | undefined>

// A variable specifier: bundlers and type checkers must not insist that the package exists.
const specifier = "nodejs-polars"

/**
 * The default loader: a dynamic import of "nodejs-polars".
 *
 * @since 0.1.0
 * @category loaders
 */
export const importPolars: Loader = () =>
  import(specifier).then(
    (module: { default?: PolarsModule } & Partial<PolarsModule>) =>
      typeof module.readIPC === "function" ? module as PolarsModule : module.default,
    () => undefined
  )

/**
 * Whether `value` is a Polars DataFrame (without loading Polars).
 *
 * @since 0.1.0
 * @category guards
 */
export const isDataFrame = (value: unknown): value is DataFrameLike =>
  typeof value === "object" && value !== null && Object.prototype.toString.call(value) === "[object DataFrame]" &&
  typeof (value as DataFrameLike).writeIPC === "function"

/**
 * Whether `value` is a Polars Series (without loading Polars).
 *
 * @since 0.1.0
 * @category guards
 */
export const isSeries = (value: unknown): value is SeriesLike =>
  typeof value === "object" && value !== null && typeof (value as { _s?: unknown })._s === "object" &&
  typeof (value as SeriesLike).toFrame === "function"

const IPC_SHUFFLE_WIDTH = 8

const ARROW_MAGIC = [0x41, 0x52, 0x52, 0x4f, 0x57, 0x31] // "ARROW1"
const PARQUET_MAGIC = [0x50, 0x41, 0x52, 0x31] // "PAR1"

/**
 * What a value's own writer returned, when it is a whole file of the kind asked for (its magic at
 * both ends); throws otherwise. The guard recognises Polars values by shape, so a look-alike — or
 * a writer of another nodejs-polars copy gone wrong — must not store what cannot be read back.
 */
const checkedFile = (file: unknown, magic: ReadonlyArray<number>, kind: string): Uint8Array => {
  const ok = file instanceof Uint8Array && file.byteLength >= 2 * magic.length &&
    magic.every((byte, i) => file[i] === byte && file[file.byteLength - magic.length + i] === byte)
  if (!ok) {
    throw new TypeError(`the value's writer did not return ${kind} file (is it a nodejs-polars DataFrame or Series?)`)
  }
  return file as Uint8Array
}

const encodeWith = (
  value: DataFrameLike | SeriesLike,
  policy: Blocks.BlockPolicy,
  headerRoom: number
): FramedPayload => {
  const series = !isDataFrame(value)
  const ipc = checkedFile(
    series ? (value as SeriesLike).toFrame().writeIPC() : (value as DataFrameLike).writeIPC(),
    ARROW_MAGIC,
    "an Arrow IPC"
  )
  const out = new Blocks.Writer(BufferPool.take(headerRoom + 1 + Blocks.bound(ipc.byteLength)), headerRoom)
  out.u8(series ? 1 : 0)
  const compressed = Blocks.write(out, ipc, IPC_SHUFFLE_WIDTH, policy)
  return {
    bytes: out.bytes.subarray(0, out.offset),
    codec: compressed ? policy.spec.codec : "none",
    rawBytes: ipc.byteLength
  }
}

const decodeWith = (polars: PolarsModule, payload: Uint8Array): unknown => {
  const input = new Blocks.Reader(payload, 0)
  const shape = input.u8()
  if (shape > 1) throw new RangeError(`unknown shape ${shape}`)
  const rawLength = input.view.getFloat64(input.offset + 5, true)
  if (!Number.isSafeInteger(rawLength) || rawLength < 0) throw new RangeError(`bad stream length ${rawLength}`)
  const ipc = Buffer.allocUnsafe(rawLength)
  Blocks.read(input, ipc)
  const frame = polars.readIPC(ipc)
  return shape === 1 ? frame.getColumns()[0] : frame
}

const failure = (reason: CodecError["reason"], method: string, cause: unknown, what: string) =>
  new CodecError({
    reason,
    method,
    format: "polars",
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
 * Decoding with nodejs-polars, loaded on the first read (at most once): a value stored by Polars
 * read where it is not installed is an "UnknownFormat" CodecError, and a payload Polars rejects a
 * "Corrupt" one.
 */
const decoderLoading = (load: Loader) => {
  let loaded: Promise<PolarsModule | undefined> | undefined
  const polars = Effect.promise(() => (loaded ??= load().catch(() => undefined)))
  return (format: string, corrupt: string, decode: (module: PolarsModule) => unknown) =>
    Effect.flatMap(polars, (module) =>
      module === undefined
        ? Effect.fail(
          new CodecError({
            reason: "UnknownFormat",
            method: "Codec.decode",
            format,
            description: "stored as a Polars DataFrame, but nodejs-polars is not installed"
          })
        )
        : Effect.try({
          try: () => decode(module) as DataFrameLike | SeriesLike,
          catch: (cause) => failure("Corrupt", "Codec.decode", cause, corrupt)
        }))
}

/**
 * The "polars" format with the given loader (tests inject one; `importPolars` by default). The
 * loader runs at most once per handler, on the first read.
 *
 * @since 0.1.0
 * @category handlers
 */
export const makeHandler = (load: Loader = importPolars): FormatHandler<DataFrameLike | SeriesLike> => {
  const decodeLoaded = decoderLoading(load)
  return makeFormatHandler({
    format: "polars",
    version: 1,
    kind: "table",
    guard: (value): value is DataFrameLike | SeriesLike => isDataFrame(value) || isSeries(value),
    encode: (value) =>
      Effect.try({
        try: () => encodeWith(value, uncompressed, 0).bytes,
        catch: (cause) => failure("Unserializable", "Codec.encode", cause, "Polars could not write the value")
      }),
    encodeFramed: (value, settings: CompressionSettings, headerRoom) =>
      Effect.try({
        try: () =>
          encodeWith(value, {
            spec: Compression.byName[settings.codec],
            level: settings.level,
            shuffle: settings.shuffle,
            minSize: settings.minSize,
            minSavings: settings.minSavings
          }, headerRoom),
        catch: (cause) => failure("Unserializable", "Codec.encode", cause, "Polars could not write the value")
      }),
    // Effectful only: nodejs-polars is imported on the first read.
    decodeEffect: (payload) =>
      decodeLoaded("polars", "Polars payload does not decode", (module) => decodeWith(module, payload))
  })
}

/**
 * The "polars" format, loading nodejs-polars with a dynamic import on first read.
 *
 * @since 0.1.0
 * @category handlers
 */
export const handler: FormatHandler<DataFrameLike | SeriesLike> = makeHandler()

// Polars' names for the Parquet page codecs.
const parquetCompression: Readonly<Record<CompressionSettings["codec"], string>> = {
  lz4: "lz4",
  zstd: "zstd",
  gzip: "gzip",
  brotli: "brotli",
  none: "uncompressed"
}

const PARQUET_CODECS: ReadonlyArray<CompressionSettings["codec"]> = ["lz4", "zstd", "gzip", "brotli", "none"]

const encodeParquet = (
  value: DataFrameLike | SeriesLike,
  codec: CompressionSettings["codec"],
  headerRoom: number
): FramedPayload => {
  const series = !isDataFrame(value)
  const frame = series ? (value as SeriesLike).toFrame() : value as DataFrameLike
  const file = checkedFile(frame.writeParquet({ compression: parquetCompression[codec] }), PARQUET_MAGIC, "a Parquet")
  const out = new Blocks.Writer(BufferPool.take(headerRoom + 1 + file.byteLength), headerRoom)
  out.u8(series ? 1 : 0)
  out.raw(file)
  return { bytes: out.bytes, codec, rawBytes: file.byteLength }
}

const decodeParquet = (polars: PolarsModule, payload: Uint8Array): unknown => {
  const shape = payload[0]
  if (shape === undefined || shape > 1) throw new RangeError(`unknown shape ${shape}`)
  const frame = polars.readParquet(Buffer.from(payload.buffer, payload.byteOffset + 1, payload.byteLength - 1))
  return shape === 1 ? frame.getColumns()[0] : frame
}

/**
 * The "polars-parquet" format with the given loader: Polars values written as Parquet by Polars
 * itself, used for writing with `tables: "parquet"` and always for reading.
 *
 * @since 0.1.0
 * @category handlers
 */
export const makeParquetHandler = (load: Loader = importPolars): FormatHandler<DataFrameLike | SeriesLike> => {
  const decodeLoaded = decoderLoading(load)
  const fail = (cause: unknown) =>
    failure("Unserializable", "Codec.encode", cause, "Polars could not write the value as Parquet")
  return makeFormatHandler({
    format: "polars-parquet",
    version: 1,
    kind: "table",
    codecs: PARQUET_CODECS,
    guard: (value): value is DataFrameLike | SeriesLike => isDataFrame(value) || isSeries(value),
    encode: (value) => Effect.try({ try: () => encodeParquet(value, "none", 0).bytes, catch: fail }),
    encodeFramed: (value, settings, headerRoom) =>
      Effect.try({ try: () => encodeParquet(value, settings.codec, headerRoom), catch: fail }),
    decodeEffect: (payload) =>
      decodeLoaded(
        "polars-parquet",
        "Polars Parquet payload does not decode",
        (module) => decodeParquet(module, payload)
      )
  })
}

/**
 * The "polars-parquet" format, loading nodejs-polars with a dynamic import on first read.
 *
 * @since 0.1.0
 * @category handlers
 */
export const parquetHandler: FormatHandler<DataFrameLike | SeriesLike> = makeParquetHandler()
