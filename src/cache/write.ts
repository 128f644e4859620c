/**
 * The write path: `put`'s options, encoding, the blob written before its row, the checksum or
 * signature, and the size limit enforced after.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Header from "../codec/header.js"
import type { Encoded } from "../codec/service.js"
import { MetadataError as MetadataErrorClass, StorageError } from "../errors.js"
import type { MetadataError } from "../errors.js"
import type { UpsertItem } from "../metadata/service.js"
import type { CacheKey, KeyInput } from "../schema/CacheKey.js"
import * as BufferPool from "../shared/bufferPool.js"
import { NotSync } from "../shared/sync.js"
import * as Validate from "../shared/validate.js"
import type { Engine } from "./context.js"
import { attachMetadata } from "./customMetadata.js"
import * as FastPath from "./fastPath.js"
import { bindKey, checksumOf, type IntegritySettings } from "./integrity.js"
import { keepLimit } from "./maintenance.js"
import * as CacheMetrics from "./metrics.js"
import { type CacheError, ConfigError, type PutOptions } from "./service.js"

/** What the store answers for one upsert. */
type UpsertResult = {
  readonly replacedBlobId: string | null
  readonly totalBytes: number
  readonly leaseReleased?: boolean
}

const keyOf = (stored: { readonly key: CacheKey }): CacheKey => stored.key

/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []

/**
 * How long an expired entry may still be served stale: a finite duration (`null` or `Infinity`
 * would keep stale values forever and out of cleanup's reach).
 *
 * @since 0.1.0
 * @category options
 */
export const graceCheck = (field: string, input: unknown): number | undefined | ConfigError => {
  const millis = input === null ? null : Validate.ttl(field, input)
  return millis === null
    ? new ConfigError({
      reason: "Invalid",
      field,
      description: `must be a finite duration (how long an expired entry may be served stale), got ${
        Validate.show(input)
      }`
    })
    : millis
}

/** The options of `put`, as a table of field checks (see `Validate.fields`). */
const PUT_OPTIONS = {
  ttl: Validate.ttl,
  grace: graceCheck,
  namespace: Validate.optionalString,
  description: Validate.optionalString,
  metadata: Validate.record,
  schema: Validate.optionalSchema,
  tags: Validate.optionalTags
}

/** The names of `put`'s options, in the order they are checked (the first bad one is reported). */
const PUT_OPTION_NAMES = Object.keys(PUT_OPTIONS) as ReadonlyArray<keyof typeof PUT_OPTIONS>

/**
 * `put` options checked once: a `ConfigError` naming the bad one, or the values to use. What
 * `Validate.fields("put", options, PUT_OPTIONS)` answers, written out: `fields` builds each field's
 * name (`put.ttl`…) and its result object name by name, every put, ~0.5 µs without options and ~1 µs
 * with them (microbench), and its results have no one shape, so every later read of an option is a
 * dictionary lookup. No options at all share one result, checked once.
 *
 * @since 0.1.0
 * @category options
 */
export const readPutOptions = (options: unknown): ReturnType<typeof checkPutOptions> => {
  if (options === undefined || options === null) {
    return noPutOptions ??= Object.freeze(checkPutOptions({})) as ReturnType<typeof checkPutOptions>
  }
  const read = Validate.options("put", options, PUT_OPTION_NAMES)
  return read instanceof ConfigError ? read : checkPutOptions(read)
}

/** The checks of `PUT_OPTIONS`, in its order, into one object shape. */
const checkPutOptions = (o: Partial<Record<keyof typeof PUT_OPTIONS, unknown>>) => {
  const ttl = PUT_OPTIONS.ttl("put.ttl", o.ttl)
  if (ttl instanceof ConfigError) return ttl
  const grace = PUT_OPTIONS.grace("put.grace", o.grace)
  if (grace instanceof ConfigError) return grace
  const namespace = PUT_OPTIONS.namespace("put.namespace", o.namespace)
  if (namespace instanceof ConfigError) return namespace
  const description = PUT_OPTIONS.description("put.description", o.description)
  if (description instanceof ConfigError) return description
  const metadata = PUT_OPTIONS.metadata("put.metadata", o.metadata)
  if (metadata instanceof ConfigError) return metadata
  const schema = PUT_OPTIONS.schema("put.schema", o.schema)
  if (schema instanceof ConfigError) return schema
  const tags = PUT_OPTIONS.tags("put.tags", o.tags)
  if (tags instanceof ConfigError) return tags
  return { ttl, grace, namespace, description, metadata, schema, tags }
}

/** What `readPutOptions` answers for no options (`undefined` and `null` alike), frozen: shared. */
let noPutOptions: ReturnType<typeof checkPutOptions> | undefined

/**
 * `put` options once checked: what `readPutOptions` returns when they are valid.
 *
 * @since 0.1.0
 * @category options
 */
export type PutOptionValues = Exclude<ReturnType<typeof readPutOptions>, ConfigError>

let versionCounter = 0
/** A token unique across processes, so every version of a value is a distinct blob. */
const versionToken = (now: number): string =>
  now.toString(36) + (versionCounter++ & 0xffff).toString(36) + Math.floor(Math.random() * 36 ** 6).toString(36)

/**
 * One entry checked and encoded, its record built, nothing written yet: what `put` and `putMany`
 * then write (the blob first, then the row).
 *
 * @since 0.1.0
 * @category models
 */
export interface PreparedPut {
  readonly key: CacheKey
  readonly item: UpsertItem
  /** The stored bytes (the blob's, when `item.record.blobId` is set). */
  readonly bytes: Uint8Array
  /**
   * Set when the bytes past the header are still to be copied (`Encoded.fill`): only for a blob
   * hashed while it is written, which `writeBlob` fills, hashes and writes piece by piece.
   */
  readonly fill?: Encoded["fill"]
}

/**
 * Blobs at least this large are hashed while they are written (`writeBlob`); a smaller one's hash
 * costs less than the turns of the event loop it would take.
 *
 * @since 0.1.0
 * @category checksums
 */
export const HASH_WHILE_WRITING = 8 << 20

/** Bytes hashed per turn of the event loop while a blob is written. */
const HASH_TURN = 4 << 20

/** What a put asks of the codec: a large array stored as it is is copied as `writeBlob` writes it. */
const deferCopy = { deferCopy: true } as const

const ignoreFilled = () => {}

/** A prepared record's checksum until `writeBlob` has computed it (no checksum is empty). */
const HASHED_WHILE_WRITING = ""

/**
 * The hash of `bytes` from `start`'s stream, `HASH_TURN` bytes per turn of the event loop
 * (`setImmediate`, after I/O callbacks: a microtask would hold the store's next step back).
 */
const hashInTurns = (
  start: NonNullable<IntegritySettings["hashStream"]>,
  bytes: Uint8Array
): Effect.Effect<string> =>
  Effect.async<string>((resume) => {
    const stream = start()
    let at = 0
    const step = () => {
      const end = Math.min(bytes.byteLength, at + HASH_TURN)
      stream.update(bytes.subarray(at, end))
      at = end
      if (at < bytes.byteLength) pending = setImmediate(step)
      else resume(Effect.succeed(stream.digest()))
    }
    let pending = setImmediate(step)
    return Effect.sync(() => clearImmediate(pending))
  })

/**
 * `put` over one engine (`enforceSize` runs after each write), and its two halves for batches:
 * `prepare` (validate, key, encode, checksum; writes nothing) and `writeBlob`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeParts = (
  engine: Engine,
  settings: IntegritySettings,
  enforceSize: (totalBytes: number) => Effect.Effect<number, MetadataError>
) => {
  const { blobs, clock, codec, config, hasher, metadata } = engine
  const limit = keepLimit(config.maxSize)
  const maxSize = config.maxSize
  /** The record of an entry checked and encoded (the key slot written into its bytes). */
  const assemble = (
    key: CacheKey,
    namespace: string,
    params: string | null,
    attached: { readonly json: string | null; readonly rows: UpsertItem["rows"] } | undefined,
    encoded: Encoded,
    opts: PutOptionValues,
    now: number
  ): PreparedPut => {
    const inline = encoded.bytes.length <= config.inlineThreshold
    const blobId = inline ? null : `${key}-${versionToken(now)}`
    // Before the checksum: the key slot is part of what is checked and signed.
    Header.writeKey(encoded.bytes, key)
    const ttl = opts.ttl === undefined ? config.defaultTtl : opts.ttl
    const expiresAt = ttl === null ? null : now + ttl
    const description = opts.description ?? null
    const format = encoded.formatVersion === 1 ? encoded.format : `${encoded.format}@${encoded.formatVersion}`
    // Fresh until expiresAt, stale until staleUntil, gone after.
    const staleUntil = expiresAt === null ? null : expiresAt + (opts.grace ?? 0)
    const metadata = attached === undefined ? null : attached.json
    const bytes = encoded.bytes
    // A plain checksum covers the bytes and the key only: the signed fields are gathered into an
    // object (one more allocation per put) only for a signature. A large blob's is computed by
    // `writeBlob`, while the store writes it.
    const hashedWhileWriting = blobId !== null && hashesWhileWriting(bytes)
    // Any other checksum reads the bytes now: a deferred copy is made first.
    if (!hashedWhileWriting && encoded.fill !== undefined) encoded.fill(ignoreFilled)
    const checksum = hashedWhileWriting
      ? HASHED_WHILE_WRITING
      : settings.signer === null
      ? bindKey(settings.hashBytes(bytes), key)
      : checksumOf(settings, {
        key,
        namespace,
        description,
        format,
        codec: encoded.codec,
        storedBytes: bytes.length,
        rawBytes: encoded.rawBytes,
        expiresAt,
        staleUntil,
        params,
        metadata
      }, bytes)
    const prepared: PreparedPut = {
      key,
      bytes,
      fill: hashedWhileWriting ? encoded.fill : undefined,
      item: {
        // Written out, not `{ ...fields, ... }`: on V8 a spread plus more fields builds each record
        // through a slow path (~12 µs an object, measured), and every later read of it is slow too.
        record: {
          key,
          namespace,
          description,
          format,
          codec: encoded.codec,
          storedBytes: bytes.length,
          rawBytes: encoded.rawBytes,
          expiresAt,
          staleUntil,
          params,
          metadata,
          checksum,
          blobId,
          inline: inline ? bytes : null,
          createdAt: now,
          accessedAt: now,
          hits: 0,
          tags: opts.tags === undefined || opts.tags.length === 0 ? undefined : opts.tags
        },
        rows: attached?.rows
      }
    }
    return prepared
  }

  const prepare = <A, I>(input: KeyInput, value: A, options: PutOptions<A, I> | undefined) => {
    const opts = readPutOptions(options)
    return opts instanceof ConfigError ? Effect.fail(opts) : prepareChecked(input, value, opts as PutOptionValues)
  }

  /** `prepare` of options already checked. */
  const prepareChecked = Effect.fnUntraced(function*<A>(input: KeyInput, value: A, opts: PutOptionValues) {
    const key = yield* engine.toKey(input, opts.namespace)
    // A CacheKey names an entry in whatever namespace its key was derived in: an overwrite through
    // it keeps the entry's namespace (a new entry put by a bare CacheKey is in the default one).
    const namespace = opts.namespace ?? (typeof input === "string"
      ? Option.match(yield* metadata.lookup(key), { onNone: () => "", onSome: (r) => r.namespace })
      : "")
    const params = config.storeKeyParams && typeof input !== "string"
      ? JSON.stringify(yield* hasher.describe(input))
      : null
    const attached = opts.metadata === undefined ? undefined : yield* attachMetadata(engine.tables, opts.metadata)
    const encoded = yield* codec.encode(value, opts.schema === undefined ? deferCopy : { schema: opts.schema })
    if (limit !== null && encoded.bytes.length > limit) {
      // Stored, it would be evicted at once, and the whole cache with it.
      return yield* new StorageError({
        reason: "TooLarge",
        method: "Cache.put",
        id: key,
        description:
          `the value is ${encoded.bytes.length} bytes stored, more than the ${limit} bytes (80% of maxSize ${config.maxSize}) eviction keeps; nothing was stored or evicted`
      })
    }
    const now = yield* Clock.currentTimeMillis
    return assemble(key, namespace, params, attached, encoded, opts, now)
  })

  /**
   * `prepare` without effects, for an entry that needs none: named parameters the hasher keys
   * (and describes, for `storeKeyParams`) synchronously, no schema, no custom metadata, a value the codec
   * encodes synchronously within the size limit. `NotSync` otherwise: `prepare` then runs and
   * reports whatever is wrong. `opts` are the entry's options, already checked; `now` the clock.
   */
  const prepareSync = (input: KeyInput, value: unknown, opts: PutOptionValues, now: number): PreparedPut | NotSync => {
    if (typeof input === "string" || opts.schema !== undefined || opts.metadata !== undefined) return NotSync
    const hashed = FastPath.keySync(hasher, input)
    if (hashed === NotSync) return NotSync
    let params: string | null = null
    if (config.storeKeyParams) {
      const described = FastPath.describeSync(hasher, input)
      if (described === NotSync) return NotSync
      params = JSON.stringify(described)
    }
    const namespace = opts.namespace ?? ""
    const key = namespace === "" ? hashed : engine.namespaceKey(namespace, hashed) as CacheKey
    const encoded = FastPath.encodeSync(codec, value)
    if (encoded === NotSync || (limit !== null && encoded.bytes.length > limit)) return NotSync
    return assemble(key, namespace, params, undefined, encoded, opts, now)
  }

  /** Whether a blob of `bytes` gets its plain checksum while it is written (`writeBlob`). */
  const hashesWhileWriting = (bytes: Uint8Array): boolean =>
    settings.signer === null && settings.hashStream !== undefined && bytes.byteLength >= HASH_WHILE_WRITING

  /**
   * Writes the blob of a prepared entry, if it has one. A large blob's plain checksum is computed
   * here, piece by piece beside the store's write: the write runs on libuv's threadpool (or the
   * network) while this thread hashes, and a turn of the event loop between pieces lets the store
   * go on from open to write to rename. The bytes are the put's own (the codec's output, never the
   * caller's memory), so what is hashed is what is written. The row is written after, with it.
   */
  const writeBlob = (prepared: PreparedPut): Effect.Effect<void, CacheError> => {
    const { record } = prepared.item
    if (record.blobId === null) return Effect.void
    if (record.checksum !== HASHED_WHILE_WRITING) return blobs.put(record.blobId, prepared.bytes)
    if (prepared.fill !== undefined) return writeFilling(prepared, record.blobId, prepared.fill)
    return Effect.zipWith(
      blobs.put(record.blobId, prepared.bytes),
      hashInTurns(settings.hashStream!, prepared.bytes),
      (_, digest) => {
        // The record is this put's own object, not yet given to any store.
        ;(record as { checksum: string }).checksum = bindKey(digest, prepared.key)
      },
      { concurrent: true }
    )
  }

  /**
   * `writeBlob` of bytes still to be copied (`PreparedPut.fill`): the copy runs in one go, a
   * piece at a time, each piece hashed while it is in cache and — by a store that takes bytes as
   * they fill (`putFilling`) — written on the threadpool while the next is copied. The stored value
   * is the array as it was when the copy ran, whatever the caller does to it afterwards.
   */
  const writeFilling = (
    prepared: PreparedPut,
    blobId: string,
    fill: NonNullable<PreparedPut["fill"]>
  ): Effect.Effect<void, CacheError> => {
    const { bytes, key } = prepared
    const record = prepared.item.record as { checksum: string }
    const stream = settings.hashStream!()
    let hashed = 0
    const fillHashing = (onFilled?: (start: number, end: number) => void) =>
      fill((start, end) => {
        if (start !== hashed) {
          if (hashed !== 0 || start < 0) throw new RangeError(`filled ${start}..${end} after ${hashed}`)
          stream.update(bytes.subarray(0, start))
        }
        stream.update(bytes.subarray(start, end))
        hashed = end
        onFilled?.(start, end)
      })
    const written = blobs.putFilling !== undefined
      ? blobs.putFilling(blobId, bytes, fillHashing)
      : Effect.suspend(() => {
        fillHashing()
        return blobs.put(blobId, bytes)
      })
    return Effect.flatMap(written, () =>
      Effect.suspend(() => {
        if (hashed !== bytes.byteLength) {
          return Effect.die(new RangeError(`the copy filled ${hashed} of ${bytes.byteLength} bytes`))
        }
        // The record is this put's own object, not yet given to any store.
        record.checksum = bindKey(stream.digest(), key)
        return Effect.void
      }))
  }

  /** After the row is written: the large value's buffer can serve the next put. */
  const release = (prepared: PreparedPut) => {
    if (prepared.item.record.blobId !== null) BufferPool.give(prepared.bytes)
    CacheMetrics.bytesWritten.unsafeUpdate(prepared.bytes.length, NO_LABELS)
  }

  /** What a put answers: its key, and whether the lease it was given was freed in its commit. */
  type Stored = { readonly key: CacheKey; readonly leaseReleased: boolean }

  /**
   * The end of a put whose row is written: the replaced blob deleted, the size limit enforced,
   * the latency counted.
   */
  const finish = (prepared: PreparedPut, written: UpsertResult, started: bigint): Effect.Effect<Stored, CacheError> => {
    const { key } = prepared
    const stored: Stored = { key, leaseReleased: written.leaseReleased === true }
    return Effect.zipRight(
      written.replacedBlobId !== null
        ? Effect.zipRight(
          engine.deleteBlobs([{ key, blobId: written.replacedBlobId, storedBytes: 0 }]),
          enforceSize(written.totalBytes)
        )
        : enforceSize(written.totalBytes),
      Effect.sync(() => {
        CacheMetrics.putLatency.unsafeUpdate(engine.sinceMs(started), NO_LABELS)
        return stored
      })
    )
  }

  /**
   * A whole put without effects, for the common small one: prepared by `prepareSync`, inline (no
   * blob to write), its row written by the store's synchronous upsert, no replaced blob to
   * delete and the size limit not reached. It answers the put's result, or an effect that goes
   * on from where it stopped (a blob to write, an effectful upsert, a replaced blob to delete, the
   * size limit to enforce, the failure to report), or `NotSync` when `prepareSync` could not
   * prepare it: nothing was done and the effectful `storeEffect` runs. Each effect step a put takes costs
   * ~0.3–1 µs and the Promise facade's fiber more: the effect machinery was ~20% of a small put's
   * CPU (profile).
   */
  const storeSync = (
    input: KeyInput,
    value: unknown,
    opts: PutOptionValues,
    leaseHolder: string | undefined,
    now: number
  ): Stored | Effect.Effect<Stored, CacheError> | NotSync => {
    const started = clock.unsafeCurrentTimeNanos()
    const prepared = prepareSync(input, value, opts, now)
    if (prepared === NotSync) return NotSync
    if (prepared.item.record.blobId !== null) return writePrepared(prepared, leaseHolder, started)
    const written = metadata.unsafeUpsert(prepared.item.record, undefined, leaseHolder)
    if (written === NotSync) return writePrepared(prepared, leaseHolder, started)
    if (written instanceof MetadataErrorClass) return Effect.fail(written)
    release(prepared)
    if (written.replacedBlobId !== null || (maxSize !== null && written.totalBytes > maxSize)) {
      return finish(prepared, written, started)
    }
    CacheMetrics.putLatency.unsafeUpdate(engine.sinceMs(started), NO_LABELS)
    return { key: prepared.key, leaseReleased: written.leaseReleased === true }
  }

  /**
   * `put`, giving up `leaseHolder`'s lease on the entry's key in the row's transaction when the
   * store can (`leaseReleased` then says so): a memoised miss stores its result and frees its
   * lease in one commit. Synchronous (`storeSync`) when it can be.
   */
  const store = <A, I>(
    input: KeyInput,
    value: A,
    options: PutOptions<A, I> | undefined,
    leaseHolder: string | undefined
  ): Effect.Effect<Stored, CacheError> => {
    const opts = readPutOptions(options)
    if (opts instanceof ConfigError) return Effect.fail(opts)
    return Effect.withFiberRuntime((fiber) => {
      // The fiber's clock, as `Clock.currentTimeMillis` would read it (a TestClock in tests).
      const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
      const done = storeSync(input, value, opts, leaseHolder, now)
      return done === NotSync
        ? storeEffect(input, value, opts, leaseHolder)
        : Effect.isEffect(done)
        ? done
        : Effect.succeed(done)
    })
  }

  /** `store` through the effectful `prepare`: schemas, custom metadata, paths, bad input. */
  const storeEffect = (
    input: KeyInput,
    value: unknown,
    opts: PutOptionValues,
    leaseHolder: string | undefined
  ): Effect.Effect<Stored, CacheError> => {
    const started = clock.unsafeCurrentTimeNanos()
    return Effect.flatMap(
      prepareChecked(input, value, opts),
      (prepared) => writePrepared(prepared, leaseHolder, started)
    )
  }

  /** The blob, if any, then the row through the effectful upsert, then `finish`. */
  const writePrepared = Effect.fnUntraced(function*(
    prepared: PreparedPut,
    leaseHolder: string | undefined,
    started: bigint
  ) {
    const { blobId } = prepared.item.record
    yield* writeBlob(prepared)
    const written = yield* metadata.upsert(prepared.item.record, prepared.item.rows, leaseHolder).pipe(
      // The row was not written: the new blob would be an orphan.
      Effect.tapError(() => blobId === null ? Effect.void : Effect.ignore(blobs.delete(blobId)))
    )
    // Large values only: the blob is written and checksummed, so its buffer can serve the next put.
    release(prepared)
    return yield* finish(prepared, written, started)
  })

  /**
   * `put` settled without the effect runtime when it can (`storeSync`), for the Promise facade:
   * the key, or an effect that fails, finishes it or runs it whole; at `now`.
   */
  const unsafePut = (
    input: KeyInput,
    value: unknown,
    options: PutOptions<any, any> | undefined,
    now: number
  ): CacheKey | Effect.Effect<CacheKey, CacheError> => {
    const opts = readPutOptions(options)
    if (opts instanceof ConfigError) return Effect.fail(opts)
    const done = storeSync(input, value, opts, undefined, now)
    return done === NotSync
      ? Effect.map(storeEffect(input, value, opts, undefined), keyOf)
      : Effect.isEffect(done)
      ? Effect.map(done, keyOf)
      : done.key
  }

  // Untraced like `read`: puts are hot too.
  const put = <A, I>(input: KeyInput, value: A, options?: PutOptions<A, I>) =>
    Effect.map(store(input, value, options, undefined), keyOf)

  /** `put` that also gives up `leaseHolder`'s lease on the key when the store can (see `store`). */
  const putReleasing = <A, I>(input: KeyInput, value: A, options: PutOptions<A, I> | undefined, leaseHolder: string) =>
    store(input, value, options, leaseHolder)
  return { put, putReleasing, unsafePut, prepare, prepareSync, writeBlob, release }
}

/**
 * `put` over one engine; `enforceSize` runs after each write.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  engine: Engine,
  settings: IntegritySettings,
  enforceSize: (totalBytes: number) => Effect.Effect<number, MetadataError>
) => makeParts(engine, settings, enforceSize).put
