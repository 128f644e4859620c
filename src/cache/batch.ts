/**
 * Batches and tags: `getMany` (one metadata query for the batch, the same read decision as `get`
 * for each entry, blobs read with bounded concurrency), `putMany` (one metadata transaction: small
 * entries prepared inside it as their rows are written, otherwise every entry prepared before
 * anything is written, blobs first), `invalidateMany` (one
 * removal) and `invalidateTags` (one removal through the tag index).
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { MetadataError as MetadataErrorClass } from "../errors.js"
import type { KeyError } from "../errors.js"
import type { MetadataError, StoredValue, UpsertManyResult } from "../metadata/service.js"
import type { CacheKey, KeyInput } from "../schema/CacheKey.js"
import { NotSync } from "../shared/sync.js"
import * as Validate from "../shared/validate.js"
import type { Engine } from "./context.js"
import * as FastPath from "./fastPath.js"
import type { IntegritySettings } from "./integrity.js"
import { keepLimit } from "./maintenance.js"
import * as CacheMetrics from "./metrics.js"
import type * as Read from "./read.js"
import { decide, readGetOptions } from "./read.js"
import { type CacheError, ConfigError, type GetOptions, type PutManyEntry, StorageError } from "./service.js"
import type * as Write from "./write.js"
import { readPutOptions } from "./write.js"

/** How many blobs of one batch are read or written at a time. */
export const BATCH_CONCURRENCY = 8

/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []

/** The items of an iterable argument, or a `ConfigError` when it is not one. */
const itemsOf = <A>(method: string, input: Iterable<A>): Array<A> | ConfigError => {
  if (input === null || input === undefined || typeof (input as any)[Symbol.iterator] !== "function") {
    return new ConfigError({
      reason: "Invalid",
      field: method,
      description: `must be an iterable (such as an array), got ${Validate.show(input)}`
    })
  }
  try {
    return Array.from(input)
  } catch (cause) {
    return new ConfigError({
      reason: "Invalid",
      field: method,
      description: `could not be iterated: ${Validate.show(cause)}`,
      cause
    })
  }
}

/**
 * The keys of a batch, in order: named parameters hashed synchronously where the hasher can (as
 * `get`'s fast path does), the rest (CacheKeys, paths to hash, bad input) through `engine.toKey`,
 * whose first failure fails the call. An effect per key costs more than hashing it (~1.5 µs).
 */
const keysOf = (
  engine: Engine,
  list: ReadonlyArray<KeyInput>,
  namespace: string | undefined
): Effect.Effect<Array<CacheKey>, KeyError> => {
  const keys = new Array<CacheKey>(list.length)
  const rest: Array<number> = []
  for (let i = 0; i < list.length; i++) {
    const input = list[i]
    const key = typeof input === "string" ? NotSync : FastPath.keySync(engine.hasher, input)
    if (key === NotSync) rest.push(i)
    else keys[i] = namespace === undefined || namespace === "" ? key : engine.namespaceKey(namespace, key) as CacheKey
  }
  if (rest.length === 0) return Effect.succeed(keys)
  return Effect.as(
    Effect.forEach(rest, (i) =>
      Effect.map(engine.toKey(list[i], namespace), (key) => {
        keys[i] = key
      }), { discard: true }),
    keys
  )
}

/**
 * The batch operations over one engine.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  engine: Engine,
  settings: IntegritySettings,
  reads: ReturnType<typeof Read.make>,
  writes: ReturnType<typeof Write.makeParts>,
  enforceSize: (totalBytes: number) => Effect.Effect<number, MetadataError>
) => {
  const { clock, codec, config, metadata } = engine
  const limit = keepLimit(config.maxSize)
  // A signature covers row fields a probe does not return: signed caches look whole rows up.
  const fetchMany = settings.signer === null ? metadata.probeMany : metadata.lookupMany

  const getMany = Effect.fn("Cache.getMany")(
    function*<A>(inputs: Iterable<KeyInput>, options?: GetOptions<A, any>) {
      const started = clock.unsafeCurrentTimeNanos()
      const checked = readGetOptions("getMany", options)
      if (checked instanceof ConfigError) return yield* checked
      const list = itemsOf("getMany.keys", inputs)
      if (list instanceof ConfigError) return yield* list
      const namespace = options?.namespace
      if (list.length === 0) return []
      const keys = yield* keysOf(engine, list, namespace)
      const now = yield* Clock.currentTimeMillis
      const found: ReadonlyArray<Option.Option<StoredValue>> = yield* fetchMany(keys)
      const results = new Array<Option.Option<A>>(keys.length)
      // Inline hits and misses are settled here synchronously, as `get`'s fast path does; blobs,
      // schemas and anything broken go through the effectful read, a few at a time.
      const rest: Array<number> = []
      const unrecorded: Array<string | null> = []
      let hits = 0
      let bytesRead = 0
      let misses = 0
      for (let i = 0; i < keys.length; i++) {
        const record = Option.getOrNull(found[i])
        const decision = decide(record, now, settings, undefined, checked?.allowStale)
        if (decision._tag === "Miss") {
          results[i] = Option.none()
          if (FastPath.recordAccessSync(metadata, null, now) === NotSync) unrecorded.push(null)
          misses++
          continue
        }
        if (decision._tag === "Bytes" && checked === undefined) {
          const decoded = FastPath.decodeSync(codec, decision.bytes)
          if (decoded !== NotSync) {
            results[i] = Option.some(decoded as A)
            if (FastPath.recordAccessSync(metadata, keys[i], now) === NotSync) unrecorded.push(keys[i])
            hits++
            bytesRead += record!.storedBytes
            continue
          }
        }
        rest.push(i)
      }
      // The metrics of what was settled here, once for the batch (the rest count their own).
      reads.countMany(hits, bytesRead, misses, started)
      yield* Effect.forEach(unrecorded, (key) => metadata.recordAccess(key, now), { discard: true })
      if (rest.length > 0) {
        yield* Effect.forEach(rest, (i) => {
          const record = Option.getOrNull(found[i])!
          return Effect.map(
            reads.serve<A, StoredValue>(
              keys[i],
              record,
              decide(record, now, settings, undefined, checked?.allowStale),
              now,
              started,
              checked,
              reads.probeRow
            ),
            (hit) => {
              results[i] = Option.map(hit, (h) => h.value)
            }
          )
        }, { concurrency: BATCH_CONCURRENCY, discard: true })
      }
      return results as ReadonlyArray<Option.Option<A>>
    }
  )

  const putMany = Effect.fn("Cache.putMany")(function*(entries: Iterable<PutManyEntry>) {
    const started = clock.unsafeCurrentTimeNanos()
    const list = itemsOf("putMany.entries", entries)
    if (list instanceof ConfigError) return yield* list
    for (let i = 0; i < list.length; i++) {
      if (!Array.isArray(list[i])) {
        return yield* new ConfigError({
          reason: "Invalid",
          field: `putMany.entries[${i}]`,
          description: `must be a [key, value, options?] tuple, got ${Validate.show(list[i])}`
        })
      }
    }
    if (list.length === 0) return []
    const now = yield* Clock.currentTimeMillis
    const keys = new Array<CacheKey>(list.length)
    const prepared = new Array<Write.PreparedPut>(list.length)
    const synced = writeSync(list, now, keys, prepared)
    if (synced instanceof MetadataErrorClass) return yield* synced
    if (synced !== NotSync) {
      CacheMetrics.bytesWritten.unsafeUpdate(synced.bytes, NO_LABELS)
      return yield* finishMany(synced.written, keys, started)
    }
    // Everything is checked and encoded before anything is written: a bad entry stores nothing.
    // Synchronously where an entry needs no effect (options checked once per distinct options
    // object), the rest through the effectful `prepare`, whose first failure fails the batch. An
    // entry `writeSync` stopped at (a blob to write first) is already prepared.
    const rest: Array<number> = []
    let lastOptions: unknown = undefined
    let checked: Write.PutOptionValues | ConfigError = readPutOptions(undefined)
    for (let i = 0; i < list.length; i++) {
      if (prepared[i] !== undefined) continue
      const [key, value, options] = list[i]
      if (options !== lastOptions) {
        checked = readPutOptions(options)
        lastOptions = options
      }
      const done = checked instanceof ConfigError ? NotSync : writes.prepareSync(key, value, checked, now)
      if (done === NotSync) rest.push(i)
      else prepared[i] = done
    }
    if (rest.length > 0) {
      yield* Effect.forEach(rest, (i) => {
        const [key, value, options] = list[i]
        return Effect.map(writes.prepare(key, value, options), (p) => {
          prepared[i] = p
        })
      }, { discard: true })
    }
    if (limit !== null) {
      let total = 0
      for (const p of prepared) total += p.bytes.length
      if (total > limit) {
        return yield* new StorageError({
          reason: "TooLarge",
          method: "Cache.putMany",
          id: prepared[0].key,
          description:
            `the batch is ${total} bytes stored, more than the ${limit} bytes (80% of maxSize ${config.maxSize}) eviction keeps; nothing was stored or evicted`
        })
      }
    }
    // Only the entries with a blob: an effect per inline entry costs more than its row.
    const withBlobs = prepared.filter((p) => p.item.record.blobId !== null)
    const newBlobs = withBlobs.map((p) => p.item.record.blobId!)
    // Written, interrupted or failed part-way: the blobs of a batch whose rows were not written
    // are deleted (a delete of one never written does nothing).
    const dropNewBlobs = engine.deleteBlobIds(newBlobs)
    const written = yield* Effect.forEach(withBlobs, writes.writeBlob, {
      concurrency: BATCH_CONCURRENCY,
      discard: true
    }).pipe(
      Effect.zipRight(metadata.upsertMany(prepared.map((p) => p.item))),
      Effect.onError(() => dropNewBlobs)
    )
    for (let i = 0; i < prepared.length; i++) {
      writes.release(prepared[i])
      keys[i] = prepared[i].key
    }
    return yield* finishMany(written, keys, started)
  })

  /**
   * The batch written without effects when every entry can be: prepared by `prepareSync`, stored
   * inline, the batch within the size limit. Each entry is prepared inside the store's transaction
   * just before its row is written (`unsafeUpsertMany`), so the batch's prepared entries are never
   * all alive at once: held until the transaction, as the effectful path must hold them, every
   * young-generation GC during a batch of 10,000 copied and promoted them (with a 128 MiB young
   * generation, where none ran during the batch, it cost ~9 µs an entry less; preparing here saved
   * ~3.5 of ~18 µs, measured 2026-12-02). `NotSync`, having
   * written nothing, at the first entry that cannot be (the effectful path then does the whole
   * batch and reports what is wrong); a prepared entry with a blob is left in `prepared` for it.
   * Fills `keys` as it goes; answers what the store wrote and how many bytes.
   */
  const writeSync = (
    list: ReadonlyArray<PutManyEntry>,
    now: number,
    keys: Array<CacheKey>,
    prepared: Array<Write.PreparedPut>
  ): { readonly written: UpsertManyResult; readonly bytes: number } | MetadataError | NotSync => {
    let lastOptions: unknown = undefined
    let checked: Write.PutOptionValues | ConfigError = readPutOptions(undefined)
    let bytes = 0
    const written = metadata.unsafeUpsertMany(list.length, (i) => {
      try {
        const [key, value, options] = list[i]
        if (options !== lastOptions) {
          checked = readPutOptions(options)
          lastOptions = options
        }
        if (checked instanceof ConfigError) return NotSync
        const done = writes.prepareSync(key, value, checked, now)
        if (done === NotSync) return NotSync
        if (done.item.record.blobId !== null) {
          prepared[i] = done
          return NotSync
        }
        bytes += done.bytes.length
        if (limit !== null && bytes > limit) return NotSync
        keys[i] = done.key
        return done.item
      } catch {
        // `produce` must not throw: the effectful path reports whatever this was.
        return NotSync
      }
    })
    return written === NotSync || written instanceof MetadataErrorClass ? written : { written, bytes }
  }

  /** After a batch's rows are written: replaced blobs deleted, the size limit enforced, metrics. */
  const finishMany = Effect.fnUntraced(function*(
    written: UpsertManyResult,
    keys: ReadonlyArray<CacheKey>,
    started: bigint
  ) {
    if (written.replacedBlobIds.length > 0) yield* engine.deleteBlobIds(written.replacedBlobIds)
    yield* enforceSize(written.totalBytes)
    CacheMetrics.putLatency.unsafeUpdate(engine.sinceMs(started), NO_LABELS)
    yield* Effect.logDebug(`cacheness: stored ${keys.length} entries in one batch`)
    return keys
  })

  const invalidateMany = Effect.fn("Cache.invalidateMany")(function*(inputs: Iterable<KeyInput>) {
    const list = itemsOf("invalidateMany.keys", inputs)
    if (list instanceof ConfigError) return yield* list
    const keys = yield* Effect.forEach(list, (input) => engine.toKey(input))
    return keys.length === 0 ? 0 : yield* engine.removeMatching({ keys: Array.from(new Set(keys)) })
  })

  const invalidateTags = Effect.fn("Cache.invalidateTags")(function*(input: ReadonlyArray<string>) {
    const tags = Validate.optionalTags("invalidateTags.tags", input)
    if (tags instanceof ConfigError) return yield* tags
    if (tags === undefined) {
      return yield* new ConfigError({
        reason: "Invalid",
        field: "invalidateTags.tags",
        description: "must be an array of non-empty strings, got undefined"
      })
    }
    if (tags.length === 0) return 0
    const removed = yield* engine.removeMatching({ tags })
    yield* Effect.logDebug(`cacheness: invalidated ${removed} entries tagged ${tags.join(", ")}`)
    return removed
  })

  return {
    getMany: getMany as unknown as {
      (keys: Iterable<KeyInput>): Effect.Effect<ReadonlyArray<Option.Option<unknown>>, CacheError>
      <A, I>(
        keys: Iterable<KeyInput>,
        options: GetOptions<A, I>
      ): Effect.Effect<ReadonlyArray<Option.Option<A>>, CacheError>
    },
    putMany,
    invalidateMany,
    invalidateTags
  }
}
