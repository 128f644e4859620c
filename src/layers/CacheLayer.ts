/**
 * The cache: `make` composes Hasher, Codec, MetadataStore and BlobStore into the `Cache` service;
 * `layer`, `layerMemory` and `layerConfig` assemble the backends a configuration names.
 *
 * Where TTL gets checked: `readLive` (reads) and `cleanupExpired` (removal). Where integrity gets
 * checked: `readBytes`. Where size is enforced: `enforceSize`, after puts and in housekeeping.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Config from "effect/Config"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import * as fs from "node:fs"
import * as path from "node:path"
import * as CacheMetrics from "../CacheMetrics.js"
import { describedContains } from "../internal/describeParams.js"
import { resolveConfig } from "../internal/config.js"
import { type CacheConfig, parseSize } from "../schema/CacheConfig.js"
import type { CacheEntry, IntegrityReport } from "../schema/CacheEntry.js"
import { type CacheKey, isCacheKey, type KeyInput } from "../schema/CacheKey.js"
import { BlobStore } from "../services/BlobStore.js"
import {
  Cache,
  type CacheError,
  ConfigError,
  type GetOptions,
  type InvalidateFilter,
  type PruneOptions,
  type PutOptions,
  type ResolvedConfig,
  type VerifyOptions
} from "../services/Cache.js"
import { Codec } from "../services/Codec.js"
import { Hasher, KeyError, PathFingerprints } from "../services/Hasher.js"
import { type EntryRecord, MetadataError, MetadataStore, type RemovedRef, type StoredValue } from "../services/MetadataStore.js"
import * as BlobStoreFileSystem from "./BlobStoreFileSystem.js"
import * as BlobStoreMemory from "./BlobStoreMemory.js"
import * as BlobStorePg from "./BlobStorePg.js"
import * as CodecDefault from "./CodecDefault.js"
import * as HasherXxhash from "./HasherXxhash.js"
import * as MetadataStoreJson from "./MetadataStoreJson.js"
import * as MetadataStoreMemory from "./MetadataStoreMemory.js"
import * as MetadataStorePg from "./MetadataStorePg.js"
import * as MetadataStoreSqlite from "./MetadataStoreSqlite.js"
import { attachMetadata, queryMetadata } from "../internal/customMetadata.js"

/** Expired entries removed per statement, so a huge cleanup never holds the write lock for long. */
const CLEANUP_BATCH = 1_000
/** Entries a single housekeeping run removes at most; the next run continues. */
const HOUSEKEEPING_LIMIT = 20_000
/** Eviction frees space down to this fraction of `maxSize`. */
const EVICT_TO = 0.8
/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []

const toEntry = (record: EntryRecord): CacheEntry => ({
  key: record.key,
  namespace: record.namespace,
  description: record.description,
  format: record.format,
  codec: record.codec,
  storedBytes: record.storedBytes,
  rawBytes: record.rawBytes,
  createdAt: new Date(record.createdAt),
  accessedAt: new Date(record.accessedAt),
  expiresAt: record.expiresAt === null ? null : new Date(record.expiresAt),
  hits: record.hits,
  params: record.params === null ? null : JSON.parse(record.params),
  metadata: record.metadata === null ? null : JSON.parse(record.metadata)
})

const ttlMillis = (ttl: Duration.DurationInput | null | undefined, fallback: number | null): number | null =>
  ttl === undefined ? fallback : ttl === null ? null : Duration.toMillis(Duration.decode(ttl))

const validTtl = (method: string, ttl: Duration.DurationInput | null | undefined): Effect.Effect<void, ConfigError> =>
  ttl === undefined || ttl === null || Option.isSome(Duration.decodeUnknown(ttl))
    ? Effect.void
    : Effect.fail(new ConfigError({ reason: "Invalid", field: `${method}.ttl`, description: `not a duration: ${String(ttl)}` }))

let versionCounter = 0
/** A token unique across processes, so every version of a value is a distinct blob. */
const versionToken = (now: number): string =>
  now.toString(36) + (versionCounter++ & 0xffff).toString(36) + Math.floor(Math.random() * 36 ** 6).toString(36)

/**
 * Builds the cache on the four services in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: ResolvedConfig) =>
  Effect.gen(function*() {
    const hasher = yield* Hasher
    const codec = yield* Codec
    const blobs = yield* BlobStore
    const metadata = yield* MetadataStore
    // Latency is read from the Clock the layer was built with, synchronously: an effectful
    // Clock read per get would cost more than all of the metrics bookkeeping (~0.3 µs).
    const clock = yield* Effect.clock
    const sinceMs = (started: bigint) => Number(clock.unsafeCurrentTimeNanos() - started) / 1e6
    const countMiss = (started: bigint) => {
      CacheMetrics.misses.unsafeUpdate(1, NO_LABELS)
      CacheMetrics.getLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
    }
    const tables = new Map(config.metadataTables.map((t) => [t.name, t]))

    const toKey = (input: KeyInput): Effect.Effect<CacheKey, KeyError> => {
      if (typeof input === "string") {
        return isCacheKey(input)
          ? Effect.succeed(input)
          : Effect.fail(new KeyError({ reason: "InvalidKey", method: "Cache", path: "key", description: `"${input}" is not a cache key (16 lowercase hex digits); pass named parameters or the result of cache.key(params)` }))
      }
      return hasher.key(input)
    }

    const deleteBlobs = (refs: ReadonlyArray<RemovedRef>) =>
      // Most removed entries are inline: only the ones with a blob cost an effect each.
      Effect.forEach(refs.filter((ref) => ref.blobId !== null), (ref) =>
        blobs.delete(ref.blobId!).pipe(
          Effect.catchAll((e) => Effect.logWarning(`cacheness: could not delete blob ${ref.blobId}: ${e.message}`))
        ), { discard: true, concurrency: 8 })

    /** Removes an entry found broken on read, unless it was overwritten meanwhile. */
    const dropBroken = (record: StoredValue, why: string) =>
      Effect.gen(function*() {
        yield* Effect.logWarning(`cacheness: entry ${record.key} ${why}; removed, treated as a miss`)
        const removed = yield* metadata.remove({ keys: [record.key], checksum: record.checksum })
        yield* deleteBlobs(removed)
      })

    /** Why stored bytes cannot be trusted, or `null` when they check out. */
    const checkBytes = (record: StoredValue, bytes: Uint8Array): string | null =>
      bytes.length !== record.storedBytes
        ? `has ${bytes.length} stored bytes, expected ${record.storedBytes}`
        : config.verifyIntegrity && hasher.hashBytes(bytes) !== record.checksum
        ? "failed its checksum"
        : null

    /** The blob of an entry; `None` when it is gone (the entry is then dropped). */
    const readBlob = <R extends StoredValue>(
      record: R,
      refresh: (key: string) => Effect.Effect<Option.Option<R>, CacheError>
    ): Effect.Effect<Option.Option<readonly [R, Uint8Array]>, CacheError> =>
      Effect.flatMap(blobs.get(record.blobId!), (blob) => {
        if (Option.isSome(blob)) return Effect.succeed(Option.some([record, blob.value] as const))
        // A concurrent overwrite may have replaced the version we were about to read.
        return Effect.flatMap(refresh(record.key), (current) =>
          Option.isSome(current) && current.value.blobId !== record.blobId && current.value.blobId !== null
            ? readBlob(current.value, refresh)
            : Effect.as(dropBroken(record, `has no blob (${record.blobId})`), Option.none()))
      })

    const isLive = (record: StoredValue, now: number) => record.expiresAt === null || record.expiresAt > now

    /**
     * The read path shared by `get` and `getWithMetadata`: TTL, integrity and decoding are checked
     * here. It is the hottest code of the library, so it is untraced and avoids nested generators
     * (a span costs ~7–10 µs here, more than half the budget of a hit).
     */
    const read = Effect.fnUntraced(function*<A, R extends StoredValue>(
      input: KeyInput,
      options: GetOptions<A, any> | undefined,
      fetch: (key: string) => Effect.Effect<Option.Option<R>, CacheError>
    ) {
      const started = clock.unsafeCurrentTimeNanos()
      const key = yield* toKey(input)
      const now = yield* Clock.currentTimeMillis
      const found = yield* fetch(key)
      if (Option.isNone(found) || !isLive(found.value, now)) {
        yield* metadata.recordAccess(null, now)
        countMiss(started)
        return Option.none()
      }
      let record = found.value
      let bytes = record.inline
      if (record.blobId !== null) {
        const blob = yield* readBlob(record, fetch)
        if (Option.isNone(blob)) {
          yield* metadata.recordAccess(null, now)
          countMiss(started)
          return Option.none()
        }
        ;[record, bytes] = blob.value
      }
      const problem = checkBytes(record, bytes ?? new Uint8Array(0))
      if (problem !== null) {
        yield* dropBroken(record, problem)
        yield* metadata.recordAccess(null, now)
        countMiss(started)
        return Option.none()
      }
      const decoded = yield* Effect.either(codec.decode(bytes!, options))
      if (decoded._tag === "Left") {
        yield* dropBroken(record, `could not be decoded (${decoded.left.message})`)
        yield* metadata.recordAccess(null, now)
        countMiss(started)
        return Option.none()
      }
      yield* metadata.recordAccess(key, now)
      CacheMetrics.hits.unsafeUpdate(1, NO_LABELS)
      CacheMetrics.bytesRead.unsafeUpdate(record.storedBytes, NO_LABELS)
      CacheMetrics.getLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
      return Option.some({ value: decoded.right as A, record })
    })

    const removeAll = (refs: ReadonlyArray<RemovedRef>) => Effect.as(deleteBlobs(refs), refs.length)

    const enforceSize = (totalBytes: number) =>
      config.maxSize === null || totalBytes <= config.maxSize
        ? Effect.succeed(0)
        : Effect.gen(function*() {
          const evicted = yield* metadata.evict(totalBytes - Math.floor(config.maxSize! * EVICT_TO))
          yield* deleteBlobs(evicted)
          CacheMetrics.evictions.unsafeUpdate(evicted.length, NO_LABELS)
          const bytes = evicted.reduce((n, r) => n + r.storedBytes, 0)
          yield* Effect.logInfo(
            `cacheness: size limit ${config.maxSize} bytes exceeded; evicted ${evicted.length} least-recently-used entries (${bytes} bytes)`
          )
          return evicted.length
        })

    const prune = Effect.fn("Cache.prune")(function*(target: number | string, options?: PruneOptions) {
      const targetBytes = parseSize(target)
      if (Option.isNone(targetBytes)) {
        return yield* new ConfigError({ reason: "Invalid", field: "prune.target", description: `not a size: ${String(target)}` })
      }
      const { totalBytes } = yield* metadata.totals
      if (totalBytes <= targetBytes.value) return { entries: 0, bytes: 0 }
      const evicted = yield* metadata.evict(totalBytes - targetBytes.value)
      // Blob deletion is the slow part of a large prune: report it in chunks.
      const chunk = 256
      for (let i = 0; i < evicted.length; i += chunk) {
        yield* deleteBlobs(evicted.slice(i, i + chunk))
        options?.onProgress?.({ done: Math.min(i + chunk, evicted.length), total: evicted.length })
      }
      CacheMetrics.evictions.unsafeUpdate(evicted.length, NO_LABELS)
      const bytes = evicted.reduce((n, r) => n + r.storedBytes, 0)
      yield* Effect.logInfo(`cacheness: pruned to ${targetBytes.value} bytes; evicted ${evicted.length} least-recently-used entries (${bytes} bytes)`)
      return { entries: evicted.length, bytes }
    })

    const cleanupExpired = (limit: number) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        let removed = 0
        while (removed < limit) {
          const batch = yield* metadata.remove({ expiredAt: now, limit: Math.min(CLEANUP_BATCH, limit - removed) })
          yield* deleteBlobs(batch)
          removed += batch.length
          if (batch.length < CLEANUP_BATCH) break
        }
        if (removed > 0) {
          CacheMetrics.expirations.unsafeUpdate(removed, NO_LABELS)
          yield* Effect.logInfo(`cacheness: removed ${removed} expired entries`)
        }
        return removed
      })

    // Untraced like `read`: puts are hot too.
    const put = Effect.fnUntraced(function*<A, I>(input: KeyInput, value: A, options?: PutOptions<A, I>) {
      const started = clock.unsafeCurrentTimeNanos()
      yield* validTtl("put", options?.ttl)
      const key = yield* toKey(input)
      const params = config.storeKeyParams && typeof input !== "string"
        ? JSON.stringify(yield* hasher.describe(input))
        : null
      const attached = options?.metadata === undefined ? undefined : yield* attachMetadata(tables, options.metadata)
      const encoded = yield* codec.encode(value, options?.schema === undefined ? undefined : { schema: options.schema })
      const now = yield* Clock.currentTimeMillis
      const inline = encoded.bytes.length <= config.inlineThreshold
      const blobId = inline ? null : `${key}-${versionToken(now)}`
      if (blobId !== null) yield* blobs.put(blobId, encoded.bytes)
      const ttl = ttlMillis(options?.ttl, config.defaultTtl)
      const written = yield* metadata.upsert({
        key,
        namespace: options?.namespace ?? "",
        description: options?.description ?? null,
        format: encoded.formatVersion === 1 ? encoded.format : `${encoded.format}@${encoded.formatVersion}`,
        codec: encoded.codec,
        storedBytes: encoded.bytes.length,
        rawBytes: encoded.rawBytes,
        checksum: hasher.hashBytes(encoded.bytes),
        blobId,
        inline: inline ? encoded.bytes : null,
        createdAt: now,
        accessedAt: now,
        expiresAt: ttl === null ? null : now + ttl,
        hits: 0,
        params,
        metadata: attached === undefined ? null : attached.json
      }, attached?.rows).pipe(
        // The row was not written: the new blob would be an orphan.
        Effect.tapError(() => blobId === null ? Effect.void : Effect.ignore(blobs.delete(blobId)))
      )
      if (written.replacedBlobId !== null) yield* deleteBlobs([{ key, blobId: written.replacedBlobId, storedBytes: 0 }])
      yield* enforceSize(written.totalBytes)
      CacheMetrics.bytesWritten.unsafeUpdate(encoded.bytes.length, NO_LABELS)
      CacheMetrics.putLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
      return key
    })

    const get = <A>(input: KeyInput, options?: GetOptions<A, any>) =>
      Effect.map(read(input, options, metadata.probe), Option.map((hit) => hit.value))

    const getWithMetadata = Effect.fn("Cache.getWithMetadata")(function*<A>(input: KeyInput, options?: GetOptions<A, any>) {
      return Option.map(yield* read(input, options, metadata.lookup), (hit) => ({ value: hit.value, entry: toEntry(hit.record) }))
    })

    const verify = Effect.fn("Cache.verify")(function*(options?: VerifyOptions) {
      const records = yield* metadata.select({})
      const dangling: Array<string> = []
      const sizeMismatches: Array<string> = []
      const checksumMismatches: Array<string> = []
      const broken: Array<EntryRecord> = []
      let done = 0
      for (const record of records) {
        let bytes: Option.Option<Uint8Array>
        if (record.blobId === null) {
          bytes = Option.flatMap(yield* metadata.lookup(record.key), (r) => Option.fromNullable(r.inline))
        } else {
          bytes = yield* blobs.get(record.blobId)
        }
        if (Option.isNone(bytes)) {
          dangling.push(record.key)
          broken.push(record)
        } else if (bytes.value.length !== record.storedBytes) {
          sizeMismatches.push(record.key)
          broken.push(record)
        } else if (hasher.hashBytes(bytes.value) !== record.checksum) {
          checksumMismatches.push(record.key)
          broken.push(record)
        }
        done++
        if (options?.onProgress !== undefined && (done % 256 === 0 || done === records.length)) {
          options.onProgress({ done, total: records.length })
        }
      }
      const referenced = new Set(records.map((r) => r.blobId).filter((id) => id !== null))
      let orphans = (yield* blobs.list).filter((id) => !referenced.has(id))
      let repaired = 0
      if (options?.repair === true) {
        for (const record of broken) {
          const removed = yield* metadata.remove({ keys: [record.key], checksum: record.checksum })
          yield* deleteBlobs(removed)
          repaired += removed.length
        }
        if (orphans.length > 0) {
          // Re-read references right before deleting: a put in flight writes its blob first.
          const live = new Set((yield* metadata.select({ keys: orphans.map((id) => id.slice(0, 16)) })).map((r) => r.blobId))
          orphans = orphans.filter((id) => !live.has(id))
          for (const id of orphans) if (yield* blobs.delete(id)) repaired++
        }
        if (repaired > 0) yield* Effect.logInfo(`cacheness: verify repaired ${repaired} problems`)
      }
      const report: IntegrityReport = { checked: records.length, orphans, dangling, sizeMismatches, checksumMismatches, repaired }
      return report
    })

    const service = Cache.of({
      config,
      key: (params) => toKey(params),
      put,
      get: get as Cache.Service["get"],
      getWithMetadata: getWithMetadata as Cache.Service["getWithMetadata"],
      has: Effect.fnUntraced(function*(input: KeyInput) {
        const key = yield* toKey(input)
        const found = yield* metadata.probe(key)
        return Option.isSome(found) && isLive(found.value, yield* Clock.currentTimeMillis)
      }),
      touch: Effect.fn("Cache.touch")(function*(input: KeyInput, ttl?: Duration.DurationInput | null) {
        yield* validTtl("touch", ttl)
        const key = yield* toKey(input)
        const now = yield* Clock.currentTimeMillis
        const millis = ttlMillis(ttl, config.defaultTtl)
        return yield* metadata.touch(key, millis === null ? null : now + millis, now)
      }),
      invalidate: Effect.fn("Cache.invalidate")(function*(input: KeyInput) {
        const key = yield* toKey(input)
        return (yield* removeAll(yield* metadata.remove({ keys: [key] }))) > 0
      }),
      invalidateWhere: Effect.fn("Cache.invalidateWhere")(function*(filter: InvalidateFilter) {
        const now = yield* Clock.currentTimeMillis
        const base = {
          namespace: filter.namespace,
          createdBefore: filter.createdBefore === undefined ? undefined : new Date(filter.createdBefore).getTime(),
          expiredAt: filter.expiredOnly === true ? now : undefined
        }
        if (filter.params === undefined) return yield* removeAll(yield* metadata.remove(base))
        const wanted = yield* hasher.describe(filter.params)
        const candidates = yield* metadata.select(base)
        const keys = candidates
          .filter((r) => r.params !== null && describedContains(JSON.parse(r.params), wanted))
          .map((r) => r.key)
        return keys.length === 0 ? 0 : yield* removeAll(yield* metadata.remove({ ...base, keys }))
      }),
      clear: Effect.fn("Cache.clear")(function*() {
        const removed = yield* removeAll(yield* metadata.clear)
        yield* Effect.logInfo(`cacheness: cleared ${removed} entries`)
        return removed
      }),
      cleanupExpired: Effect.fn("Cache.cleanupExpired")(function*() {
        return yield* cleanupExpired(Number.POSITIVE_INFINITY)
      }),
      list: Effect.fn("Cache.list")(function*(options?: Parameters<Cache.Service["list"]>[0]) {
        return (yield* metadata.list(options ?? {})).map(toEntry)
      }),
      stats: Effect.fn("Cache.stats")(function*() {
        const totals = yield* metadata.totals
        const lookups = totals.hits + totals.misses
        return {
          ...totals,
          hitRate: lookups === 0 ? 0 : totals.hits / lookups,
          directory: config.directory,
          maxSize: config.maxSize,
          backend: metadata.backend
        }
      }),
      prune,
      verify,
      queryMetadata: ((table, filter, options) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          queryMetadata(metadata, tables, table, filter, options, now, toEntry))) as Cache.Service["queryMetadata"],
      sql: metadata.sql === null
        ? Effect.fail(new MetadataError({ method: "Cache.sql", reason: "Unsupported", description: `the ${metadata.backend} metadata backend has no SQL; use sqlite or postgres` }))
        : Effect.succeed(metadata.sql),
      memo: {
        read: <A>(key: CacheKey, options: GetOptions<A, any>) =>
          Effect.map(read(key, options, metadata.probe), Option.map((hit) => ({ value: hit.value as A, expiresAt: hit.record.expiresAt }))),
        acquireLease: (key, holder, duration) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => metadata.acquireLease(key, holder, now + duration, now)),
        releaseLease: (key, holder) => metadata.releaseLease(key, holder),
        changeCount: metadata.changeCount === undefined
          ? () => undefined
          : () => {
            try {
              return metadata.changeCount!()
            } catch {
              return undefined
            }
          },
        recordHit: (key) => Effect.flatMap(Clock.currentTimeMillis, (now) => metadata.recordAccess(key, now))
      }
    })

    // Housekeeping: a background fiber for the layer's lifetime, bounded per run, never holding
    // up puts; interrupted when the layer's scope closes.
    const housekeeping = Effect.gen(function*() {
      yield* cleanupExpired(HOUSEKEEPING_LIMIT)
      yield* enforceSize((yield* metadata.totals).totalBytes)
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("cacheness: housekeeping failed", cause)))
    yield* (config.cleanupOnOpen ? housekeeping : Effect.void).pipe(
      Effect.zipRight(Effect.repeat(Effect.delay(housekeeping, Duration.millis(config.cleanupInterval)), Schedule.forever)),
      Effect.interruptible,
      Effect.forkScoped
    )
    return service
  })

/** Marks the directory as a cache, so backup tools skip it (https://bford.info/cachedir/). */
const markDirectory = (directory: string) =>
  Effect.try({
    try: () => {
      fs.mkdirSync(directory, { recursive: true })
      const tag = path.join(directory, "CACHEDIR.TAG")
      if (!fs.existsSync(tag)) {
        fs.writeFileSync(
          tag,
          "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cacheness.\n# For information about cache directory tags see https://bford.info/cachedir/\n"
        )
      }
    },
    catch: (cause) =>
      new ConfigError({ reason: "Invalid", field: "directory", description: `cannot create ${directory}: ${String(cause)}`, cause })
  })

const metadataLayer = (config: ResolvedConfig): Layer.Layer<MetadataStore, CacheError> => {
  const tables = config.metadataTables.map((t) => t.definition)
  switch (config.metadataBackend) {
    case "memory":
      return tables.length === 0 ? MetadataStoreMemory.layer : MetadataStoreMemory.layerWith({ tables })
    case "sqlite":
      return MetadataStoreSqlite.layer({ filename: path.join(config.directory!, "cacheness.db"), tables })
    case "json":
      return MetadataStoreJson.layer({ filename: path.join(config.directory!, "cacheness.json"), tables })
    case "postgres": {
      const pg = config.postgres!
      return MetadataStorePg.layer({ ...pg, tables })
    }
  }
}

const blobLayer = (config: ResolvedConfig): Layer.Layer<BlobStore, CacheError> => {
  switch (config.blobs) {
    case "memory":
      return BlobStoreMemory.layer
    case "filesystem":
      return BlobStoreFileSystem.layer({ directory: path.join(config.directory!, "blobs") })
    case "postgres": {
      const pg = config.postgres!
      return BlobStorePg.layer({ url: pg.url, schema: pg.schema, connectTimeout: pg.connectTimeout, idleTimeout: pg.idleTimeout })
    }
  }
}

/** The metadata store's fingerprint table, as the optional service the Hasher looks for. */
const fingerprintsLayer: Layer.Layer<PathFingerprints, never, MetadataStore> = Layer.effect(
  PathFingerprints,
  Effect.map(MetadataStore, (store) => ({ lookup: store.lookupFingerprints, save: store.saveFingerprints }))
)

/** The Hasher with path options, and the metadata store it shares with the cache. */
const hasherAndMetadata = (config: ResolvedConfig): Layer.Layer<Hasher | MetadataStore, CacheError> => {
  const hasher = HasherXxhash.layerWith({
    hashPathContent: config.hashPathContent,
    fingerprints: config.pathHashing.fingerprints,
    concurrency: config.pathHashing.concurrency,
    parallelFiles: config.pathHashing.parallelFiles,
    parallelBytes: config.pathHashing.parallelBytes,
    onProgress: config.pathHashing.onProgress
  })
  const metadata = metadataLayer(config)
  return config.hashPathContent && config.pathHashing.fingerprints
    ? Layer.provideMerge(hasher, Layer.provideMerge(fingerprintsLayer, metadata))
    : Layer.merge(hasher, metadata)
}

const fromResolved = (config: ResolvedConfig): Layer.Layer<Cache, CacheError> =>
  Layer.scoped(Cache, make(config)).pipe(
    Layer.provide(Layer.mergeAll(
      hasherAndMetadata(config),
      CodecDefault.layer({ compression: config.compression, handlers: config.handlers }),
      blobLayer(config)
    )),
    Layer.provide(config.directory === null ? Layer.empty : Layer.effectDiscard(markDirectory(config.directory)))
  )

/**
 * The cache a configuration describes; by default SQLite metadata and files in `./.cacheness`.
 * The configuration is validated and paths resolved when the layer is built.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (config?: CacheConfig): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(Effect.map(resolveConfig(config, { memory: false }), fromResolved))

/**
 * A cache with no disk: memory metadata and blobs, same semantics, TestClock-driven TTL.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (config?: Omit<CacheConfig, "directory" | "metadataBackend" | "blobs">): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(Effect.map(resolveConfig({ ...config, metadataBackend: "memory", blobs: "memory" }, { memory: true }), fromResolved))

/**
 * Reads `CACHENESS_DIR`, `CACHENESS_DEFAULT_TTL`, `CACHENESS_MAX_SIZE` and
 * `CACHENESS_METADATA_BACKEND` through Effect `Config`; `overrides` fill what the environment
 * leaves unset. `none` as TTL or size means never / unlimited.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (overrides?: CacheConfig): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(Effect.gen(function*() {
    const nullable = (name: string) =>
      Config.option(Config.string(name)).pipe(
        Config.map(Option.map((s): string | null => /^(none|null|never|unlimited)$/i.test(s.trim()) ? null : s.trim()))
      )
    const env = yield* Config.all({
      directory: Config.option(Config.string("CACHENESS_DIR")),
      defaultTtl: nullable("CACHENESS_DEFAULT_TTL"),
      maxSize: nullable("CACHENESS_MAX_SIZE"),
      metadataBackend: Config.option(Config.string("CACHENESS_METADATA_BACKEND"))
    }).pipe(
      Effect.mapError((cause) => new ConfigError({ reason: "Invalid", field: "environment", description: String(cause), cause }))
    )
    const fromEnv: Record<string, unknown> = {}
    for (const [name, value] of Object.entries(env)) {
      if (Option.isSome(value)) {
        // A number of milliseconds / bytes in the environment arrives as a string.
        fromEnv[name] = typeof value.value === "string" && /^\d+$/.test(value.value) ? Number(value.value) : value.value
      }
    }
    const config = yield* resolveConfig({ ...overrides, ...fromEnv } as CacheConfig, { memory: false })
    return fromResolved(config)
  }))

/**
 * The embedded default: SQLite metadata and files in `CACHENESS_DIR` or `./.cacheness`.
 *
 * @since 0.1.0
 * @category layers
 */
export const CacheLive: Layer.Layer<Cache, CacheError> = layerConfig()

