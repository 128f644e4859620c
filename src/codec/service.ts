/**
 * Value ⇄ bytes. A registry of format handlers picks a format per value; the codec compresses the
 * handler's payload and writes a small header naming format, format version and compression, so a
 * future reader knows what it holds.
 *
 * Who owns which bytes (the buffer pool of `shared/bufferPool.ts` keeps one large idle buffer;
 * only a buffer it handed out is taken back, and only by whoever knows the bytes are dead):
 * - `encode` may return its bytes in a pooled buffer (the framed array and table formats write
 *   into one). The caller owns them: the cache gives them back once the blob store has written
 *   them — which is why a blob store must not keep the bytes it is given.
 * - `decode` never gives back the bytes it reads. The caller may, when `retainsBytes(bytes)` is
 *   `false` (the value copied out everything it keeps), and must not otherwise: the value may be
 *   a view of them.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import { defined } from "../shared/defined.js"
import { NotSync } from "../shared/sync.js"

import { CodecError } from "../errors.js"

export { CodecError }

/**
 * Compression codecs by name.
 *
 * @since 0.1.0
 * @category models
 */
export const CompressionCodec = Schema.Literal("lz4", "zstd", "gzip", "brotli", "none")

/**
 * @since 0.1.0
 * @category models
 */
export type CompressionCodec = typeof CompressionCodec.Type

/**
 * How one kind of value becomes bytes and back. The codec compresses what `encode` returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface FormatHandler<A = any> {
  /** Stable format id written into every stored value, e.g. "v8", "bytes", "ndarray". */
  readonly format: string
  /** Bumped when the payload layout changes; `decode` receives the stored version. */
  readonly version: number
  /** Which compression default applies: "bytes", "array", "table" or "object". */
  readonly kind: string
  readonly guard: (value: unknown) => value is A
  readonly encode: (value: A) => Effect.Effect<Uint8Array, CodecError>
  /**
   * `payload` may be a view at an offset into a larger buffer (and a `Buffer`); `Codec.handler`
   * hands its `decode` an exact `Uint8Array` instead. Fail with "UnknownFormat" only when this
   * process cannot read the format at all (the entry is kept for one that can), "Corrupt" when the
   * bytes are bad (the entry is removed).
   */
  readonly decode: (payload: Uint8Array, version: number) => Effect.Effect<A, CodecError>
  /**
   * Optional: `decode` as a plain function, for handlers whose decoding needs no effects. The
   * cache's hot path calls it to skip the effect runtime; it may throw, and then `decode` runs
   * instead (and reports the failure). `makeHandler` derives `decode` from it.
   */
  readonly decodeSync?: ((payload: Uint8Array, version: number) => A) | undefined
  /**
   * Optional: the handler compresses its own payload (block by block, after a shuffle) and writes
   * it straight into the stored value, leaving `headerRoom` bytes free at the front for the
   * codec's header — so a 256 MiB array is never held as payload *and* framed copy. With this set,
   * `decode` receives the stored payload as written (nothing is decompressed for it), and `encode`
   * must produce the same layout uncompressed.
   */
  readonly encodeFramed?: (
    value: A,
    settings: CompressionSettings,
    headerRoom: number
  ) => Effect.Effect<FramedPayload, CodecError>
  /**
   * Optional, with `encodeFramed`: codecs the handler applies itself, inside its own encoding,
   * accepted even when this runtime's codec table cannot run them (Parquet pages are compressed
   * with zstd inside WebAssembly, also on Node 20 where `node:zlib` has no zstd).
   */
  readonly codecs?: ReadonlyArray<CompressionCodec> | undefined
  /**
   * Optional, with `encodeFramed`: `false` when `decode` copies out everything the value keeps
   * (the array and table formats decompress into new memory), so the stored bytes may be reused
   * once it returns. Absent means the value may be a view of the payload.
   */
  readonly retainsPayload?: boolean | undefined
  /**
   * Optional, with `encodeFramed`: where a payload can be read to directly, so a reader skips
   * buffers between the file and the value (a payload stored raw goes straight into its value, a
   * compressed one into the tail of the memory it decodes to). `head` is the payload's first bytes
   * (up to a few KiB), `length` its whole length, `codec` the header's ("none" when nothing in the
   * payload is compressed). The answer: views whose lengths add up to `length`, in the payload's
   * order, and `finish`, which makes the value once the views hold the payload (throwing, as
   * `decode` would, on bytes it cannot read). `undefined` when the value is not laid out so:
   * `decode` then reads it from one buffer.
   */
  readonly place?:
    | ((head: Uint8Array, length: number, version: number, codec: CompressionCodec) => Placement<A> | undefined)
    | undefined
}

/**
 * A payload's views and how to make the value from them (`FormatHandler.place`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Placement<A> {
  readonly views: ReadonlyArray<Uint8Array>
  /** When given, nothing may be written into the views before it settles. */
  readonly ready?: Promise<unknown> | undefined
  /** The views' memory is faulted in already (once `ready` settles). */
  readonly touched?: boolean | undefined
  readonly finish: () => A
}

/**
 * A format handler for your own type from plain functions: `encode` returns the bytes to store,
 * `decode` gets them back with the version they were written with. A thrown exception becomes a
 * `CodecError` ("Unserializable" on encode, "Corrupt" on decode, a miss on `get`). Register it with
 * `Cache.layer({ handlers: [handler] })`; it is tried before the built-in formats.
 *
 * `decode` receives an exact, plain `Uint8Array`: byte offset 0, spanning its whole `ArrayBuffer`
 * (copied out of the stored bytes only when they are not already), so `bytes.buffer` and
 * `bytes.slice().buffer` are the payload and nothing else — 8-byte aligned for any typed array.
 *
 * A put checks that `decode` reads back what `encode` wrote (one `decode` per put), so a value
 * the handler cannot read back — say an instance of a second copy of the class the guard lets
 * through — fails the put with a `CodecError` "Unserializable" instead of being stored and lost.
 * `checkDecodes: false` skips that check for a handler known to round-trip.
 *
 * ```ts
 * const points = Codec.handler({
 *   format: "point",
 *   guard: (u): u is Point => u instanceof Point,
 *   encode: (p) => new Uint8Array(new Float64Array([p.x, p.y]).buffer),
 *   decode: (bytes) => { const f = new Float64Array(bytes.buffer); return new Point(f[0], f[1]) }
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const handler = <A>(options: {
  /** Stable id written into every stored value: 1–255 printable ASCII characters. */
  readonly format: string
  /** Default 1; bump it when the layout changes and branch on it in `decode`. */
  readonly version?: number | undefined
  /** Which compression settings apply (`CacheConfig.compression.byKind`). Default "object". */
  readonly kind?: string | undefined
  readonly guard: (value: unknown) => value is A
  readonly encode: (value: A) => Uint8Array
  readonly decode: (bytes: Uint8Array, version: number) => A
  /** Default true: a put decodes what `encode` wrote and fails when `decode` throws. */
  readonly checkDecodes?: boolean | undefined
}): FormatHandler<A> => {
  const fail = (reason: "Unserializable" | "Corrupt", method: string, what: string) => (cause: unknown) =>
    new CodecError({
      reason,
      method,
      format: options.format,
      description: `${what}: ${(cause as Error)?.message ?? String(cause)}`,
      cause
    })
  const version = options.version ?? 1
  const decode = (bytes: Uint8Array, version: number) => options.decode(exactBytes(bytes), version)
  const check = options.checkDecodes !== false
  return makeHandler({
    format: options.format,
    version,
    kind: options.kind ?? "object",
    guard: options.guard,
    encode: (value) =>
      Effect.flatMap(
        Effect.try({ try: () => options.encode(value), catch: fail("Unserializable", "Codec.encode", "encode threw") }),
        (bytes) => {
          if (!(bytes instanceof Uint8Array)) {
            return Effect.fail(
              fail("Unserializable", "Codec.encode", "encode must return a Uint8Array")(
                new TypeError(`it returned ${bytes === null ? "null" : typeof bytes}`)
              )
            )
          }
          if (!check) return Effect.succeed(bytes)
          // Never store what cannot be read back: the guard may accept values encode cannot
          // write faithfully (a second copy of a class, a look-alike object).
          return Effect.as(
            Effect.try({
              try: () => decode(bytes, version),
              catch: fail("Unserializable", "Codec.encode", "the handler's decode cannot read what its encode wrote")
            }),
            bytes
          )
        }
      ),
    decode,
    corrupt: "decode threw"
  })
}

/**
 * What `makeHandler` takes: a `FormatHandler` whose `decode` is the plain function, and, for the
 * rare handler that needs effects to decode (a module loaded on first read), `decodeEffect`.
 *
 * @since 0.1.0
 * @category models
 */
export type HandlerImpl<A> =
  & Omit<FormatHandler<A>, "decode" | "decodeSync">
  & {
    /**
     * The description of the "Corrupt" error a throwing `decode` becomes, before the thrown
     * message; default `<format> payload does not decode`. A handler that must fail otherwise
     * ("UnknownFormat") writes `decodeEffect`.
     */
    readonly corrupt?: string | undefined
  }
  & (
    | {
      /** Decodes synchronously or throws. */
      readonly decode: (payload: Uint8Array, version: number) => A
      /** Optional: the effectful decode, when it must do more than `decode` (`decode` stays the fast path). */
      readonly decodeEffect?: ((payload: Uint8Array, version: number) => Effect.Effect<A, CodecError>) | undefined
    }
    | {
      readonly decode?: undefined
      readonly decodeEffect: (payload: Uint8Array, version: number) => Effect.Effect<A, CodecError>
    }
  )

/**
 * A `FormatHandler` from a plain `decode` (the primitive): the effectful `decode` is derived from
 * it (a throw becomes a "Corrupt" `CodecError`) unless `decodeEffect` is given, and `decodeSync` is
 * the plain function itself, so the cache's hot path skips the effect runtime.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeHandler = <A>(impl: HandlerImpl<A>): FormatHandler<A> => {
  const { corrupt, decode, decodeEffect, ...rest } = impl
  const what = corrupt ?? `${impl.format} payload does not decode`
  const derived = decodeEffect ?? ((payload: Uint8Array, version: number) =>
    Effect.try({
      try: () => decode!(payload, version),
      catch: (cause) =>
        new CodecError({
          reason: "Corrupt",
          method: "Codec.decode",
          format: impl.format,
          description: `${what}: ${(cause as Error)?.message ?? String(cause)}`,
          cause
        })
    }))
  return { ...rest, decode: derived, ...(decode === undefined ? {} : { decodeSync: decode }) }
}

/**
 * `bytes` as a plain `Uint8Array` at offset 0 over an `ArrayBuffer` of exactly its length: the
 * same memory when it already is one (or a `Buffer` that is), a copy otherwise.
 */
const exactBytes = (bytes: Uint8Array): Uint8Array => {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return Object.getPrototypeOf(bytes) === Uint8Array.prototype
      ? bytes
      : new Uint8Array(bytes.buffer, 0, bytes.byteLength)
  }
  return new Uint8Array(bytes)
}

/**
 * A user's handler made safe to call: `encode` must return an Effect of bytes (a plain
 * `FormatHandler` written by hand may return bytes, throw, or fail with its own error); anything
 * else is a `CodecError` naming the handler, never a defect. `Codec.handler` builds handlers that
 * already comply.
 *
 * @since 0.1.0
 * @category constructors
 */
export const checkedHandler = <A>(handler: FormatHandler<A>): FormatHandler<A> => {
  const bad = (description: string, cause?: unknown) =>
    new CodecError({
      reason: "Unserializable",
      method: "Codec.encode",
      format: handler.format,
      description: `handler ${JSON.stringify(handler.format)}: ${description}`,
      cause
    })
  const describe = (u: unknown) =>
    u === null ? "null" : typeof u === "object" ? `an object (${Object.prototype.toString.call(u)})` : typeof u
  const encode = handler.encode
  return {
    ...handler,
    encode: (value) => {
      let result: unknown
      try {
        result = encode.call(handler, value)
      } catch (cause) {
        return Effect.fail(bad(`encode threw: ${(cause as Error)?.message ?? String(cause)}`, cause))
      }
      if (!Effect.isEffect(result)) {
        return Effect.fail(
          bad(
            `encode must return an Effect of a Uint8Array (Codec.handler wraps plain functions), got ${
              describe(result)
            }`
          )
        )
      }
      return Effect.flatMap(
        Effect.mapError(
          result as Effect.Effect<unknown, unknown>,
          (e) => e instanceof CodecError ? e : bad(`encode failed: ${(e as Error)?.message ?? String(e)}`, e)
        ),
        (bytes) =>
          bytes instanceof Uint8Array
            ? Effect.succeed(bytes)
            : Effect.fail(bad(`encode must produce a Uint8Array, got ${describe(bytes)}`))
      )
    }
  }
}

/**
 * The compression settings a handler's kind resolves to (see `CacheConfig.compression`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CompressionSettings {
  readonly codec: CompressionCodec
  readonly level: number | undefined
  /** Byte-shuffle numeric elements before compressing (Blosc's filter). */
  readonly shuffle: boolean
  /** Payloads (or blocks) smaller than this are stored raw. */
  readonly minSize: number
  /** Stored raw unless compression saves at least this fraction. */
  readonly minSavings: number
}

/**
 * What `encodeFramed` returns.
 *
 * @since 0.1.0
 * @category models
 */
export interface FramedPayload {
  /** The whole stored value; its first `headerRoom` bytes are overwritten with the header. */
  readonly bytes: Uint8Array
  /** The compression used ("none" when no block paid for it). */
  readonly codec: CompressionCodec
  /** The value's logical (uncompressed) size. */
  readonly rawBytes: number
  /**
   * Optional: the format version these bytes need, when older than the handler's `version` (a
   * value that uses nothing the newer version added stays readable by releases that read only the
   * older one). At most the handler's version.
   */
  readonly formatVersion?: number | undefined
  /**
   * Optional: `bytes` past the header are not written yet; `fill` writes them (see
   * `Encoded.fill`). The codec runs it at once unless the caller asked to (`deferCopy`).
   */
  readonly fill?: ((onFilled: (start: number, end: number) => void) => void) | undefined
}

/**
 * The result of encoding one value.
 *
 * @since 0.1.0
 * @category models
 */
export interface Encoded {
  readonly format: string
  readonly formatVersion: number
  /** The compression actually applied ("none" when compressing did not pay). */
  readonly codec: CompressionCodec
  /** Header + (compressed) payload: what gets stored. */
  readonly bytes: Uint8Array
  /** Size of the uncompressed payload. */
  readonly rawBytes: number
  /**
   * Only with `EncodeOptions.deferCopy`: `bytes` hold the header, and past it nothing the value's
   * contents decide, until `fill(onFilled)` runs. It copies the value in, in pieces, reporting each
   * range `[start, end)` once final, first to last and contiguous (the first `start` is where the
   * bytes were already complete). Run it once, synchronously, before the bytes are read: they are
   * the value as it was at that moment.
   */
  readonly fill?: ((onFilled: (start: number, end: number) => void) => void) | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface EncodeOptions {
  /** Encode through this Schema first (validated: a mismatch is a `CodecError`). */
  readonly schema?: Schema.Schema<any, any, never> | undefined
  /**
   * A large array stored as it is may come back with its bytes still to copy (`Encoded.fill`),
   * so a writer can checksum and write each piece as it is copied. Default `false`: the bytes
   * are complete.
   */
  readonly deferCopy?: boolean | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export interface DecodeOptions {
  /** Decode and validate through this Schema after reading. */
  readonly schema?: Schema.Schema<any, any, never> | undefined
}

/**
 * @since 0.1.0
 * @category models
 */
export declare namespace Codec {
  /**
   * @since 0.1.0
   * @category models
   */
  export interface Service {
    readonly encode: (value: unknown, options?: EncodeOptions) => Effect.Effect<Encoded, CodecError>
    readonly decode: (bytes: Uint8Array, options?: DecodeOptions) => Effect.Effect<unknown, CodecError>
    /**
     * Fast path: `decode` without options, synchronously — the value, or `NotSync` when it cannot
     * be done without effects or fails (then `decode` runs and reports why). Never throws.
     */
    readonly unsafeDecode: (bytes: Uint8Array) => unknown
    /**
     * Fast path: `encode` without options, synchronously — the encoded value, or `NotSync` when
     * the value's handler cannot encode without effects or encoding fails (then `encode` runs and
     * reports why). Never throws.
     */
    readonly unsafeEncode: (value: unknown) => Encoded | NotSync
    /**
     * Whether a value decoded from `bytes` may still reference them (a `Uint8Array` value is a
     * view of its stored bytes, a v8-deserialised `Buffer` too). `false` means decoding copied
     * everything it kept, so the caller may give the bytes back to the buffer pool (see below)
     * once `decode` has returned. In doubt, `true` (the `make` default).
     */
    readonly retainsBytes: (bytes: Uint8Array) => boolean
    /**
     * Optional: where stored bytes of `size` bytes starting with `head` can be read to, when their
     * format reads its payload straight into the value (a large array stored raw: `BlobStore.getPlaced`
     * reads it into the array returned). `views` add up to `size`, in the bytes' order; the first
     * is the header, alone; they are written once `ready`, if given, settles. Once they hold the
     * bytes, `decode` is `decode` of them. `undefined`
     * when the bytes are to be read whole.
     */
    readonly place?: ((head: Uint8Array, size: number) => Placed | undefined) | undefined
    /** Reads only the header: format, version and compression of stored bytes. */
    readonly inspect: (
      bytes: Uint8Array
    ) => Effect.Effect<
      { readonly format: string; readonly formatVersion: number; readonly codec: CompressionCodec },
      CodecError
    >
  }
}

/**
 * Stored bytes read to places (`Codec.Service.place`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Placed {
  /** The bytes' views, in order: the header first, alone, then the payload's. */
  readonly views: ReadonlyArray<Uint8Array>
  /** When given, nothing may be written into the views before it settles. */
  readonly ready?: Promise<unknown> | undefined
  /** The views' memory is faulted in already (once `ready` settles). */
  readonly touched?: boolean | undefined
  /** `Codec.Service.decode` of the bytes the views hold. */
  readonly decode: (options?: DecodeOptions) => Effect.Effect<unknown, CodecError>
}

/**
 * @since 0.1.0
 * @category tags
 */
export class Codec extends Context.Tag("cacheness/Codec")<Codec, Codec.Service>() {}

/**
 * What an implementer writes: `encode`, `decode` and `inspect`; `unsafeDecode`, `unsafeEncode` and
 * `retainsBytes` may be given when the codec can do better than the defaults.
 *
 * @since 0.1.0
 * @category models
 */
export type Impl =
  & Omit<Codec.Service, "unsafeDecode" | "unsafeEncode" | "retainsBytes">
  & Partial<Pick<Codec.Service, "unsafeDecode" | "unsafeEncode" | "retainsBytes">>

/**
 * A `Codec.Service` from its primitive operations (as `KeyValueStore.make` does): `unsafeDecode`
 * answers `NotSync` (every read decodes through `decode`), `unsafeEncode` too (every write encodes
 * through `encode`) and `retainsBytes` answers `true` (a
 * decoded value may view the bytes, so they are never reused).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Impl): Codec.Service =>
  Codec.of({ unsafeDecode: () => NotSync, unsafeEncode: () => NotSync, retainsBytes: () => true, ...defined(impl) })
