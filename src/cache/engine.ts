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
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schedule from "effect/Schedule"
import * as NodeFileSystem from "@effect/platform-node/NodeFileSystem"
import * as fs from "node:fs"
import * as path from "node:path"
import * as CacheMetrics from "./metrics.js"
import { asDaemon } from "../shared/daemonClock.js"
import { describedContains } from "../key/describeParams.js"
import { parseJson, toEntry } from "../metadata/entries.js"
import { resolveConfig } from "./config.js"
import { type EngineOptions, resolveEngineOptions } from "./options.js"
import * as Validate from "../shared/validate.js"
import * as BufferPool from "../shared/bufferPool.js"
import { NotSync } from "../shared/sync.js"
import * as Header from "../codec/header.js"
import * as Signing from "./signing.js"
import { type CacheConfig, parseSize } from "../schema/CacheConfig.js"
import type { IntegrityReport } from "../schema/CacheEntry.js"
import { type CacheKey, isCacheKey, type KeyInput } from "../schema/CacheKey.js"
import { BlobStore, StorageError } from "../blob/service.js"
import {
  Cache,
  type CacheError,
  ConfigError,
  type GetOptions,
  type InvalidateFilter,
  type PruneOptions,
  type PutOptions,
  type ResolvedConfig,
  type StatsOptions,
  type VerifyOptions
} from "./service.js"
import { Codec, CodecError } from "../codec/service.js"
import { Hasher, KeyError, PathFingerprints } from "../key/service.js"
import { type EntryFilter, type EntryRecord, MetadataError, MetadataStore, type RemovedRef, type StoredValue } from "../metadata/service.js"
import * as BlobStoreFileSystem from "../blob/fileSystem.js"
import * as BlobStoreMemory from "../blob/memory.js"
import * as BlobStorePg from "../blob/pg.js"
import * as CodecDefault from "../codec/registry.js"
import * as HasherXxhash from "../key/xxhash.js"
import * as MetadataStoreJson from "../metadata/json.js"
import * as MetadataStoreMemory from "../metadata/memory.js"
import * as MetadataStorePg from "../metadata/pg.js"
import * as MetadataStoreSqlite from "../metadata/sqlite.js"
import { attachMetadata, queryMetadata } from "./customMetadata.js"

/** Expired entries removed per statement, so a huge cleanup never holds the write lock for long. */
const CLEANUP_BATCH = 1_000
/** Entries a single housekeeping run removes at most; the next run continues. */
const HOUSEKEEPING_LIMIT = 20_000
/** The operating system's clock, which stamps file times. */
const systemClock = Clock.make()
/** A blob temp file older than this was abandoned by a crash (no write takes an hour). */
const STALE_TEMP_AGE = 60 * 60 * 1000
/**
 * A blob no row references, younger than this, may be a put in flight: its row commits after the
 * blob is written, once the put has the metadata store's write lock (SQLite waits up to its busy
 * timeout, 10 s by default, behind any long write). Judged like temp files: no put takes an hour.
 */
const ORPHAN_GRACE = STALE_TEMP_AGE
/** Blob read failures no retry cures (a directory in the blob's place, an invalid id in a row). */
const isPermanentReadError = (error: CacheError): boolean =>
  error._tag === "StorageError" && (error.reason === "Unreadable" || error.reason === "InvalidId")
/** Fingerprinted paths a housekeeping run checks at most; the next run continues after the last. */
const FINGERPRINT_PAGE = 5_000
/** Eviction frees space down to this fraction of `maxSize`. */
const EVICT_TO = 0.8
/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []

const ORDERS: ReadonlyArray<unknown> = ["createdAt", "accessedAt", "expiresAt", "storedBytes", "hits", "key"]

/**
 * An XXH64 checksum bound to the entry's key (XOR of the two 64-bit values, as hex). A damaged
 * database can point a key at another entry's row — an index entry whose row id lost a bit — and
 * that row's bytes match their own checksum; bound to the key, they no longer match the key asked
 * for, so the read is a miss instead of another key's value. Costs two parseInt and no hashing.
 */
const bindKey = (checksum: string, key: string): string => {
  const hi = (Number.parseInt(checksum.slice(0, 8), 16) ^ Number.parseInt(key.slice(0, 8), 16)) >>> 0
  const lo = (Number.parseInt(checksum.slice(8, 16), 16) ^ Number.parseInt(key.slice(8, 16), 16)) >>> 0
  return hi.toString(16).padStart(8, "0") + lo.toString(16).padStart(8, "0")
}

const ORDER_CHECK: Validate.Check<unknown> = (field, input) =>
  input === undefined || ORDERS.includes(input)
    ? input
    : new ConfigError({ reason: "Invalid", field, description: `must be one of ${ORDERS.join(", ")}, got ${Validate.show(input)}` })

/** The options of each operation, as a table of field checks (see `Validate.fields`). */
const PUT_OPTIONS = {
  ttl: Validate.ttl,
  namespace: Validate.optionalString,
  description: Validate.optionalString,
  metadata: Validate.record,
  schema: Validate.optionalSchema
}
const GET_OPTIONS = { schema: Validate.optionalSchema }
const LIST_OPTIONS = {
  limit: Validate.optionalCount,
  offset: Validate.optionalCount,
  namespace: Validate.optionalString,
  orderBy: ORDER_CHECK,
  descending: Validate.optionalBoolean
}
const FILTER_OPTIONS = {
  namespace: Validate.optionalString,
  params: Validate.anything,
  createdBefore: Validate.optionalInstant,
  expiredOnly: Validate.optionalBoolean
}
const VERIFY_OPTIONS = {
  repair: Validate.optionalBoolean,
  onProgress: Validate.optionalFunction<NonNullable<VerifyOptions["onProgress"]>>
}
const PRUNE_OPTIONS = { onProgress: Validate.optionalFunction<NonNullable<PruneOptions["onProgress"]>> }

/** `put` options checked once: a `ConfigError` naming the bad one, or the values to use. */
const readPutOptions = (options: unknown) => Validate.fields("put", options, PUT_OPTIONS)

/** A problem `verify` found with one version of an entry. */
interface Finding {
  readonly kind: "dangling" | "size" | "checksum"
  readonly record: EntryRecord
  /** The blob's real size when its bytes match their checksum (the recorded size is what is wrong). */
  readonly actualBytes: number | null
}

/** `get` options: only a schema. */
const readGetOptions = (method: string, options: unknown) => {
  if (options === undefined) return undefined
  const o = Validate.fields(method, options, GET_OPTIONS)
  if (o instanceof ConfigError) return o
  return o.schema === undefined ? undefined : { schema: o.schema }
}

/**
 * Calls a progress callback the caller owns: its throw is logged and the work goes on, so a
 * removal half done always finishes (rows and their blobs).
 */
const notify = <P>(callback: ((progress: P) => void) | undefined, progress: P) =>
  callback === undefined ? Effect.void : Effect.try(() => callback(progress)).pipe(
    Effect.catchAll((e) => Effect.logWarning(`cacheness: an onProgress callback threw; ignored: ${Validate.show(e.error)}`))
  )

const EMPTY = new Uint8Array(0)
const valueOf = <A>(value: A): A => value
const memoHit = <A>(value: A, record: StoredValue) => ({ value, expiresAt: record.expiresAt })

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
    const signer = config.signing === null ? null : Signing.make(Redacted.value(config.signing.key))
    /**
     * What the checksum column holds: XXH64 of the stored bytes bound to the entry's key, or the
     * HMAC of the row's trusted fields and the bytes when signing.
     */
    const checksumOf = (row: Signing.SignedFields, bytes: Uint8Array): string =>
      signer === null ? bindKey(hasher.hashBytes(bytes), row.key) : signer.sign(row, bytes)
    /**
     * How reads find an entry. A signature covers row fields a probe does not return, so with a
     * signing key every read looks up the whole row (and the synchronous fast path, which probes,
     * is off).
     */
    const probeRow: (key: string) => Effect.Effect<Option.Option<StoredValue>, CacheError> = signer === null
      ? metadata.probe
      : metadata.lookup
    // Latency is read from the Clock the layer was built with, synchronously: an effectful
    // Clock read per get would cost more than all of the metrics bookkeeping (~0.3 µs).
    const clock = yield* Effect.clock
    const sinceMs = (started: bigint) => Number(clock.unsafeCurrentTimeNanos() - started) / 1e6
    const countMiss = (started: bigint) => {
      CacheMetrics.misses.unsafeUpdate(1, NO_LABELS)
      CacheMetrics.getLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
    }
    const countHit = (record: StoredValue, started: bigint) => {
      CacheMetrics.hits.unsafeUpdate(1, NO_LABELS)
      CacheMetrics.bytesRead.unsafeUpdate(record.storedBytes, NO_LABELS)
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

    const deleteBlobIds = (ids: ReadonlyArray<string>) =>
      Effect.forEach(ids, (id) =>
        blobs.delete(id).pipe(
          Effect.catchAll((e) => Effect.logWarning(`cacheness: could not delete blob ${id}: ${e.message}`))
        ), { discard: true, concurrency: 8 })

    // Most removed entries are inline: only the ones with a blob cost an effect each.
    const deleteBlobs = (refs: ReadonlyArray<RemovedRef>) =>
      deleteBlobIds(refs.flatMap((ref) => ref.blobId === null ? [] : [ref.blobId]))

    const removeAll = (refs: ReadonlyArray<RemovedRef>) => Effect.as(deleteBlobs(refs), refs.length)

    /** Removes the matching entries and their blobs; how many entries went. */
    const removeOnce = (filter: EntryFilter): Effect.Effect<number, MetadataError> =>
      Effect.flatMap(metadata.removeCounted(filter), ({ blobIds, removed }) => Effect.as(deleteBlobIds(blobIds), removed))
    /**
     * Removing is how a full cache frees space, yet the metadata store needs a little to record a
     * removal. On a full disk the blobs of the matching rows go first (a reader finding one gone
     * misses, as it would after the removal), then the removal is tried once more.
     */
    const removeMatching = (filter: EntryFilter): Effect.Effect<number, MetadataError> =>
      removeOnce(filter).pipe(
        Effect.catchIf((error) => error.reason === "NoSpace", (error) =>
          Effect.flatMap(metadata.select(filter), (records) => {
            const ids = records.flatMap((r) => r.blobId === null ? [] : [r.blobId])
            return ids.length === 0 ? Effect.fail(error) : Effect.zipRight(deleteBlobIds(ids), removeOnce(filter))
          }))
      )

    /**
     * A removal filter bound to the version examined: the checksum, the blob id (unique per
     * version) and the creation time (restarted by every put), so a re-store of identical bytes
     * meanwhile is never removed in its place.
     */
    const versionOf = (record: StoredValue & { readonly createdAt?: number }): EntryFilter => ({
      keys: [record.key],
      checksum: record.checksum,
      blobId: record.blobId,
      createdBefore: record.createdAt === undefined ? undefined : record.createdAt + 1
    })

    /** Removes an entry found broken on read, unless it was overwritten meanwhile. */
    const dropBroken = (record: StoredValue, why: string) =>
      Effect.gen(function*() {
        if (config.readOnly === true) {
          return yield* Effect.logWarning(`cacheness: entry ${record.key} ${why}; treated as a miss (not removed: the cache is open read-only)`)
        }
        yield* Effect.logWarning(`cacheness: entry ${record.key} ${why}; removed, treated as a miss`)
        yield* removeMatching(versionOf(record))
      })

    /**
     * Why stored bytes cannot be trusted, or `null` when they check out. With a signing key the
     * signature is always checked (`verifyIntegrity: false` only skips plain checksums).
     */
    const checkBytes = (record: StoredValue, bytes: Uint8Array): string | null =>
      !(bytes instanceof Uint8Array)
        ? "has a damaged row (its value is not bytes)"
        : bytes.length !== record.storedBytes
        ? `has ${bytes.length} stored bytes, expected ${record.storedBytes}`
        : Header.keyMatches(bytes, record.key) === false
        ? "holds the value of another key (its header names a different key)"
        : signer !== null
        ? signer.verify(record as EntryRecord, bytes, record.checksum)
          ? null
          : Signing.isLegacy(record.checksum)
          ? "is signed under the previous signing scheme, which does not cover its row"
          : Signing.isSigned(record.checksum)
          ? "failed its signature check (tampered with, or signed with another key)"
          : "is not signed"
        : config.verifyIntegrity && bindKey(hasher.hashBytes(bytes), record.key) !== record.checksum
        ? "failed its checksum"
        : null

    /** A signed entry seen by a cache without the key: it cannot be checked, so it is not served (nor removed). */
    const unverifiable = (record: StoredValue) => signer === null && Signing.isSigned(record.checksum)

    /**
     * A blob's bytes; `None` when it is gone or can never be read (a permanent error is damage to
     * the entry, not to the store: the entry is broken). Transient errors (EIO, EMFILE) fail.
     */
    const readStoredBlob = (id: string): Effect.Effect<Option.Option<Uint8Array>, CacheError> =>
      Effect.catchIf(blobs.get(id), isPermanentReadError, () => Effect.succeed(Option.none<Uint8Array>()))

    /**
     * The blob of an entry; `None` when it is gone. A concurrent overwrite or invalidation may have
     * deleted the version we were about to read: then the current version is read instead (blob or
     * inline), or a miss when the entry is gone — neither is damage. Only a blob missing under an
     * unchanged entry is dropped, with a warning.
     */
    const readBlob = <R extends StoredValue>(
      record: R,
      refresh: (key: string) => Effect.Effect<Option.Option<R>, CacheError>
    ): Effect.Effect<Option.Option<readonly [R, Uint8Array]>, CacheError> =>
      Effect.flatMap(readStoredBlob(record.blobId!), (blob) => {
        if (Option.isSome(blob)) return Effect.succeed(Option.some([record, blob.value] as const))
        return Effect.flatMap(refresh(record.key), (current): Effect.Effect<Option.Option<readonly [R, Uint8Array]>, CacheError> => {
          if (Option.isNone(current)) return Effect.succeed(Option.none())
          const next = current.value
          if (next.blobId === record.blobId && next.checksum === record.checksum) {
            return Effect.as(dropBroken(record, `has no readable blob (${record.blobId})`), Option.none())
          }
          if (next.blobId === null) return Effect.succeed(Option.some([next, next.inline ?? new Uint8Array(0)] as const))
          return readBlob(next, refresh)
        })
      })

    const isLive = (record: StoredValue, now: number) => record.expiresAt === null || record.expiresAt > now

    const recordMiss = (now: number, started: bigint) =>
      Effect.as(Effect.zipRight(metadata.recordAccess(null, now), Effect.sync(() => countMiss(started))), Option.none())

    /**
     * What a read does once the entry is found: blob, integrity and decoding are checked here, a
     * broken entry is removed and reported as a miss.
     */
    const serve = Effect.fnUntraced(function*<A, R extends StoredValue>(
      key: string,
      found: R,
      now: number,
      started: bigint,
      checked: { readonly schema: NonNullable<GetOptions<A, any>["schema"]> } | undefined,
      fetch: (key: string) => Effect.Effect<Option.Option<R>, CacheError>
    ) {
      let record = found
      let bytes = record.inline
      if (record.blobId !== null) {
        const blob = yield* readBlob(record, fetch)
        if (Option.isNone(blob)) return yield* recordMiss(now, started)
        ;[record, bytes] = blob.value
      }
      const problem = checkBytes(record, bytes ?? EMPTY)
      if (problem !== null) {
        yield* dropBroken(record, problem)
        return yield* recordMiss(now, started)
      }
      const decoded = yield* Effect.either(codec.decode(bytes!, checked))
      if (decoded._tag === "Left") {
        // A format (or version, or codec) this process has no handler for is not damage: another
        // process may own the handler, so the entry is a miss here and stays.
        if (decoded.left.reason === "UnknownFormat") {
          yield* Effect.logWarning(`cacheness: entry ${record.key} cannot be read here (${decoded.left.message}); kept, treated as a miss`)
        } else {
          yield* dropBroken(record, `could not be decoded (${decoded.left.message})`)
        }
        return yield* recordMiss(now, started)
      }
      // A large blob was read into a pooled buffer: when the value copied out what it keeps, the
      // buffer serves the next large read or put instead of new memory being faulted in.
      if (record.blobId !== null && codec.retainsBytes(bytes!) === false) BufferPool.give(bytes!)
      yield* metadata.recordAccess(key, now)
      countHit(record, started)
      return Option.some({ value: decoded.right as A, record })
    })

    /**
     * `has`: the checks `get` makes before decoding — expiry, signature, blob present, size,
     * checksum, key slot, a header that parses — and the same removal of what is broken, without
     * counting a hit or a miss and without decoding the payload.
     */
    const holds = Effect.fnUntraced(function*<R extends StoredValue>(
      found: R,
      now: number,
      fetch: (key: string) => Effect.Effect<Option.Option<R>, CacheError>
    ) {
      if (!isLive(found, now) || unverifiable(found)) return false
      let record = found
      let bytes = record.inline
      if (record.blobId !== null) {
        const blob = yield* readBlob(record, fetch)
        if (Option.isNone(blob)) return false
        ;[record, bytes] = blob.value
      }
      const problem = checkBytes(record, bytes ?? EMPTY)
      if (problem !== null) {
        yield* dropBroken(record, problem)
        return false
      }
      const header = yield* Effect.either(codec.inspect(bytes!))
      if (header._tag === "Left") {
        // A format this release does not know may belong to another process: a miss, kept.
        if (header.left.reason !== "UnknownFormat") yield* dropBroken(record, `could not be decoded (${header.left.message})`)
        return false
      }
      return true
    })

    /**
     * The read path shared by `get`, `getWithMetadata` and `cached`: TTL is checked here. It is
     * the hottest code of the library, so it is untraced (a span costs ~7–10 µs here, more than
     * half the budget of a hit).
     */
    const read = Effect.fnUntraced(function*<A, R extends StoredValue>(
      input: KeyInput,
      options: GetOptions<A, any> | undefined,
      fetch: (key: string) => Effect.Effect<Option.Option<R>, CacheError>
    ) {
      const started = clock.unsafeCurrentTimeNanos()
      const checked = readGetOptions("get", options)
      if (checked instanceof ConfigError) return yield* checked
      const key = yield* toKey(input)
      const now = yield* Clock.currentTimeMillis
      const found = yield* fetch(key)
      if (Option.isNone(found) || !isLive(found.value, now) || unverifiable(found.value)) return yield* recordMiss(now, started)
      return yield* serve(key, found.value, now, started, checked, fetch)
    })

    /**
     * A read without options, settled synchronously when the stores can: a live inline entry is
     * decoded and returned in one step, skipping the effect runtime between services (each step
     * through it costs ~0.3–1 µs, and a hit's whole budget is ~18). Anything the synchronous
     * methods cannot settle — paths in the key, a blob, damage, an error — continues on `serve`
     * or `read`, which handle it in full.
     */
    const fast = signer === null
      ? { key: hasher.unsafeKey, probe: metadata.unsafeProbe, recordAccess: metadata.unsafeRecordAccess, decode: codec.unsafeDecode }
      : null
    /** The key synchronously, or `undefined` when only `toKey` can tell (paths, bad input). */
    const fastKey = (input: KeyInput): CacheKey | undefined => {
      if (fast === null) return undefined
      if (typeof input === "string") return isCacheKey(input) ? input : undefined
      const key = fast.key(input)
      return key === NotSync ? undefined : key
    }
    /** The probe synchronously, or `undefined` when only `probeRow` can tell. */
    const fastProbe = (key: CacheKey | undefined): StoredValue | null | undefined => {
      const found = key === undefined ? NotSync : fast!.probe(key)
      return found === NotSync ? undefined : found
    }
    const readProbed = <A, B>(
      input: KeyInput,
      options: GetOptions<A, any> | undefined,
      project: (value: A, record: StoredValue) => B
    ): Effect.Effect<Option.Option<B>, CacheError> =>
      fast === null || options !== undefined
        ? Effect.map(read(input, options, probeRow), Option.map((hit) => project(hit.value as A, hit.record)))
        : Effect.withFiberRuntime((fiber) => {
          const started = clock.unsafeCurrentTimeNanos()
          const key = fastKey(input)
          const found = fastProbe(key)
          if (found === undefined) {
            return Effect.map(read(input, options, probeRow), Option.map((hit) => project(hit.value as A, hit.record)))
          }
          // The fiber's clock, as `Clock.currentTimeMillis` would read it (a TestClock in tests).
          const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
          if (found === null || !isLive(found, now) || unverifiable(found)) {
            const recorded = fast.recordAccess(null, now)
            countMiss(started)
            return recorded === NotSync ? Effect.as(metadata.recordAccess(null, now), Option.none()) : Effect.succeed(Option.none())
          }
          if (found.blobId === null) {
            const bytes = found.inline ?? EMPTY
            const decoded = checkBytes(found, bytes) === null ? fast.decode(bytes) : NotSync
            if (decoded !== NotSync) {
              const recorded = fast.recordAccess(key!, now)
              countHit(found, started)
              const hit = Option.some(project(decoded as A, found))
              return recorded === NotSync ? Effect.as(metadata.recordAccess(key!, now), hit) : Effect.succeed(hit)
            }
          }
          return Effect.map(
            serve(key!, found, now, started, undefined, probeRow),
            Option.map((hit) => project(hit.value as A, hit.record))
          )
        })

    /**
     * Temp files of blob writes a crash abandoned (file-system blobs only). An hour is far longer
     * than any write takes, so a write in flight, in any process, is never touched.
     */
    const blobDirectory = config.blobs === "filesystem" ? path.join(config.directory!, "blobs") : null
    // File times come from the operating system's clock: ages are measured on it too (not on a
    // TestClock a test may have provided).
    const staleTemps = blobDirectory === null
      ? Effect.succeed([] as ReadonlyArray<BlobStoreFileSystem.TempFile>)
      : Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(
          Effect.provide(BlobStoreFileSystem.tempFiles(blobDirectory), NodeFileSystem.layer),
          (temps) => temps.filter((t) => Option.isSome(t.modified) && t.modified.value.getTime() < now - STALE_TEMP_AGE)
        )).pipe(Effect.withClock(systemClock))
    const removeStaleTemps = blobDirectory === null
      ? Effect.succeed(0)
      : Effect.provide(BlobStoreFileSystem.cleanupTemp(blobDirectory, Duration.millis(STALE_TEMP_AGE)), NodeFileSystem.layer).pipe(
        Effect.withClock(systemClock)
      )

    /**
     * Drops the stat fingerprints of paths that no longer exist — temp files hashed as key params,
     * say — so the table does not keep every path ever hashed. A page per housekeeping run,
     * resuming after the last path checked. Not on PostgreSQL: a store shared by several machines
     * holds paths that exist on another machine only. Losing a fingerprint costs a re-hash, never
     * a wrong key, so a file recreated meanwhile is harmless.
     */
    let fingerprintCursor: string | null = null
    const pruneFingerprints = metadata.backend === "postgres" ? Effect.succeed(0) : Effect.gen(function*() {
      const paths = yield* metadata.fingerprintPaths(fingerprintCursor, FINGERPRINT_PAGE)
      fingerprintCursor = paths.length < FINGERPRINT_PAGE ? null : paths[paths.length - 1]!
      const gone = yield* Effect.filter(paths, (file) =>
        Effect.promise(() =>
          fs.promises.lstat(file).then(
            () => false,
            (error) => error?.code === "ENOENT" || error?.code === "ENOTDIR"
          )
        ), { concurrency: 16 })
      return gone.length === 0 ? 0 : yield* metadata.deleteFingerprints(gone)
    })

    /** The largest value a put accepts: what eviction keeps of `maxSize`. */
    const keepLimit = config.maxSize === null ? null : Math.floor(config.maxSize * EVICT_TO)

    const enforceSize = (totalBytes: number) =>
      config.maxSize === null || totalBytes <= config.maxSize
        ? Effect.succeed(0)
        : Effect.gen(function*() {
          const evicted = yield* metadata.evict(totalBytes - Math.floor(config.maxSize! * EVICT_TO))
          yield* deleteBlobs(evicted)
          CacheMetrics.evictions.unsafeUpdate(evicted.length, NO_LABELS)
          const bytes = evicted.reduce((n, r) => n + r.storedBytes, 0)
          yield* Effect.logDebug(
            `cacheness: size limit ${config.maxSize} bytes exceeded; evicted ${evicted.length} least-recently-used entries (${bytes} bytes)`
          )
          return evicted.length
        })

    const prune = Effect.fn("Cache.prune")(function*(target: number | string, input?: PruneOptions) {
      const options = Validate.fields("prune", input, PRUNE_OPTIONS)
      if (options instanceof ConfigError) return yield* options
      const targetBytes = typeof target === "number" || typeof target === "string" ? parseSize(target) : Option.none()
      if (Option.isNone(targetBytes)) {
        return yield* new ConfigError({ reason: "Invalid", field: "prune.target", description: `not a size: ${Validate.show(target)}` })
      }
      const { totalBytes } = yield* metadata.totals
      if (totalBytes <= targetBytes.value) return { entries: 0, bytes: 0 }
      const evicted = yield* metadata.evict(totalBytes - targetBytes.value)
      // Blob deletion is the slow part of a large prune: report it in chunks. The rows are gone,
      // so the blobs go too, whatever the callback does (`notify` isolates it).
      const chunk = 256
      for (let i = 0; i < evicted.length; i += chunk) {
        yield* deleteBlobs(evicted.slice(i, i + chunk))
        yield* notify(options.onProgress, { done: Math.min(i + chunk, evicted.length), total: evicted.length })
      }
      CacheMetrics.evictions.unsafeUpdate(evicted.length, NO_LABELS)
      const bytes = evicted.reduce((n, r) => n + r.storedBytes, 0)
      yield* Effect.logDebug(`cacheness: pruned to ${targetBytes.value} bytes; evicted ${evicted.length} least-recently-used entries (${bytes} bytes)`)
      return { entries: evicted.length, bytes }
    })

    const cleanupExpired = (limit: number) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        let removed = 0
        while (removed < limit) {
          const batch = yield* removeMatching({ expiredAt: now, limit: Math.min(CLEANUP_BATCH, limit - removed) })
          removed += batch
          if (batch < CLEANUP_BATCH) break
        }
        if (removed > 0) {
          CacheMetrics.expirations.unsafeUpdate(removed, NO_LABELS)
          yield* Effect.logDebug(`cacheness: removed ${removed} expired entries`)
        }
        return removed
      })

    // Untraced like `read`: puts are hot too.
    const put = Effect.fnUntraced(function*<A, I>(input: KeyInput, value: A, options?: PutOptions<A, I>) {
      const started = clock.unsafeCurrentTimeNanos()
      const opts = readPutOptions(options)
      if (opts instanceof ConfigError) return yield* opts
      const key = yield* toKey(input)
      const params = config.storeKeyParams && typeof input !== "string"
        ? JSON.stringify(yield* hasher.describe(input))
        : null
      const attached = opts.metadata === undefined ? undefined : yield* attachMetadata(tables, opts.metadata)
      const encoded = yield* codec.encode(value, opts.schema === undefined ? undefined : { schema: opts.schema })
      if (keepLimit !== null && encoded.bytes.length > keepLimit) {
        // Stored, it would be evicted at once, and the whole cache with it.
        return yield* new StorageError({
          reason: "TooLarge",
          method: "Cache.put",
          id: key,
          description: `the value is ${encoded.bytes.length} bytes stored, more than the ${keepLimit} bytes (80% of maxSize ${config.maxSize}) eviction keeps; nothing was stored or evicted`
        })
      }
      const now = yield* Clock.currentTimeMillis
      const inline = encoded.bytes.length <= config.inlineThreshold
      const blobId = inline ? null : `${key}-${versionToken(now)}`
      // Before the checksum: the key slot is part of what is checked and signed.
      Header.writeKey(encoded.bytes, key)
      if (blobId !== null) yield* blobs.put(blobId, encoded.bytes)
      const ttl = opts.ttl === undefined ? config.defaultTtl : opts.ttl
      const row: Signing.SignedFields = {
        key,
        namespace: opts.namespace ?? "",
        description: opts.description ?? null,
        format: encoded.formatVersion === 1 ? encoded.format : `${encoded.format}@${encoded.formatVersion}`,
        codec: encoded.codec,
        storedBytes: encoded.bytes.length,
        rawBytes: encoded.rawBytes,
        expiresAt: ttl === null ? null : now + ttl,
        params,
        metadata: attached === undefined ? null : attached.json
      }
      const written = yield* metadata.upsert({
        ...row,
        checksum: checksumOf(row, encoded.bytes),
        blobId,
        inline: inline ? encoded.bytes : null,
        createdAt: now,
        accessedAt: now,
        hits: 0
      }, attached?.rows).pipe(
        // The row was not written: the new blob would be an orphan.
        Effect.tapError(() => blobId === null ? Effect.void : Effect.ignore(blobs.delete(blobId)))
      )
      // Large values only: the blob is written and checksummed, so its buffer can serve the next put.
      if (blobId !== null) BufferPool.give(encoded.bytes)
      if (written.replacedBlobId !== null) yield* deleteBlobs([{ key, blobId: written.replacedBlobId, storedBytes: 0 }])
      yield* enforceSize(written.totalBytes)
      CacheMetrics.bytesWritten.unsafeUpdate(encoded.bytes.length, NO_LABELS)
      CacheMetrics.putLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
      return key
    })

    const get = <A>(input: KeyInput, options?: GetOptions<A, any>) => readProbed(input, options, valueOf)

    const getWithMetadata = Effect.fn("Cache.getWithMetadata")(function*<A>(input: KeyInput, options?: GetOptions<A, any>) {
      return Option.map(yield* read(input, options, metadata.lookup), (hit) => ({ value: hit.value, entry: toEntry(hit.record) }))
    })

    /** The same version of an entry: a put since changes the blob id, checksum or creation time. */
    const sameVersion = (a: EntryRecord, b: EntryRecord) =>
      a.blobId === b.blobId && a.checksum === b.checksum && a.createdAt === b.createdAt && a.storedBytes === b.storedBytes

    /**
     * What is wrong with one version of an entry, or `null`. A blob that can never be read counts
     * as missing (dangling). A size mismatch whose bytes match their checksum is fixable: the
     * recorded size is wrong, not the bytes (`actualBytes`).
     */
    const examine = (record: EntryRecord): Effect.Effect<Finding | null, CacheError> =>
      Effect.gen(function*() {
        let bytes: Option.Option<Uint8Array>
        if (record.blobId === null) {
          const row = yield* metadata.lookup(record.key)
          // Replaced or removed since the listing: not this version's problem.
          if (Option.isNone(row) || !sameVersion(row.value, record)) return null
          bytes = Option.fromNullable(row.value.inline)
        } else {
          bytes = yield* readStoredBlob(record.blobId)
        }
        if (Option.isNone(bytes) || !(bytes.value instanceof Uint8Array)) return { kind: "dangling", record, actualBytes: null }
        const intact = unverifiable(record)
          ? null
          : signer === null
          ? bindKey(hasher.hashBytes(bytes.value), record.key) === record.checksum
          : signer.verify(record, bytes.value, record.checksum)
        if (bytes.value.length !== record.storedBytes) {
          return { kind: "size", record, actualBytes: intact === true ? bytes.value.length : null }
        }
        return intact === false ? { kind: "checksum", record, actualBytes: null } : null
      })

    /**
     * Blob ids old enough to be judged: a young blob without a row may be a put in flight (file
     * times are read on the operating system's clock). Stores without file times list everything;
     * the second look at the rows is then their only guard.
     */
    const settledBlobs: Effect.Effect<ReadonlyArray<string>, CacheError> = blobDirectory === null
      ? blobs.list
      : Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.map(
          Effect.provide(BlobStoreFileSystem.blobFiles(blobDirectory), NodeFileSystem.layer),
          (files) =>
            files.filter((f) => Option.isSome(f.modified) && f.modified.value.getTime() < now - ORPHAN_GRACE).map((f) => f.id)
        )).pipe(Effect.withClock(systemClock))

    const verify = Effect.fn("Cache.verify")(function*(input?: VerifyOptions) {
      const options = Validate.fields("verify", input, VERIFY_OPTIONS)
      if (options instanceof ConfigError) return yield* options
      const records = yield* metadata.select({})
      let done = 0
      const firstLook: Array<Finding> = []
      for (const record of records) {
        const finding = yield* examine(record)
        if (finding !== null) firstLook.push(finding)
        done++
        if (options.onProgress !== undefined && (done % 256 === 0 || done === records.length)) {
          yield* notify(options.onProgress, { done, total: records.length })
        }
      }
      // A second look at each finding on the row as it is now: under write load the first look
      // sees versions that were replaced meanwhile (their blob deleted by the overwrite). Only what
      // is still wrong with the same version is reported or repaired.
      const findings: Array<Finding> = []
      for (const first of firstLook) {
        const current = yield* metadata.lookup(first.record.key)
        if (Option.isNone(current) || !sameVersion(current.value, first.record)) continue
        const again = yield* examine(current.value)
        if (again !== null) findings.push(again)
      }
      const dangling = findings.filter((f) => f.kind === "dangling").map((f) => f.record.key)
      const sizeMismatches = findings.filter((f) => f.kind === "size").map((f) => f.record.key)
      const checksumMismatches = findings.filter((f) => f.kind === "checksum").map((f) => f.record.key)
      const referenced = new Set(records.map((r) => r.blobId).filter((id) => id !== null))
      let orphans = (yield* settledBlobs).filter((id) => !referenced.has(id))
      if (orphans.length > 0) {
        // Re-read references: a put writes its blob before its row, which may have committed since.
        const live = new Set((yield* metadata.select({ keys: orphans.map((id) => id.slice(0, 16)) })).map((r) => r.blobId))
        orphans = orphans.filter((id) => !live.has(id))
      }
      let repaired = 0
      if (options?.repair === true) {
        for (const finding of findings) {
          const { record } = finding
          // Bytes intact under a wrong recorded size: the row is fixed, not removed.
          if (finding.kind === "size" && finding.actualBytes !== null) {
            // A store that cannot fix a size in place says "Unsupported": the entry goes instead.
            repaired += yield* metadata.repairSize(record.key, record.blobId, record.checksum, finding.actualBytes).pipe(
              Effect.map((updated) => updated ? 1 : 0),
              Effect.catchIf((error) => error.reason === "Unsupported", () => removeMatching(versionOf(record)))
            )
          } else {
            repaired += yield* removeMatching(versionOf(record))
          }
        }
        for (const id of orphans) {
          const deleted = yield* Effect.catchAll(blobs.delete(id), (e) =>
            Effect.as(Effect.logWarning(`cacheness: could not delete orphan blob ${id}: ${e.message}`), false))
          if (deleted) repaired++
        }
        // The entry and byte counters are what size enforcement and stats trust: recomputed from
        // the rows, whatever drifted them.
        yield* metadata.recount
      }
      const temps = (yield* staleTemps).map((temp) => temp.path)
      if (options?.repair === true && temps.length > 0) repaired += yield* removeStaleTemps
      if (options?.repair === true && repaired > 0) yield* Effect.logDebug(`cacheness: verify repaired ${repaired} problems`)
      const report: IntegrityReport = {
        checked: records.length,
        orphans,
        dangling,
        sizeMismatches,
        checksumMismatches,
        staleTempFiles: temps,
        repaired
      }
      return report
    })

    const service = Cache.of({
      config,
      key: (params) => toKey(params),
      put,
      get: get as Cache.Service["get"],
      getWithMetadata: getWithMetadata as Cache.Service["getWithMetadata"],
      has: (input: KeyInput) =>
        Effect.withFiberRuntime((fiber) => {
          const found = fastProbe(fastKey(input))
          if (found !== undefined) {
            if (found === null) return Effect.succeed(false)
            const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
            // A live inline entry whose bytes check out and whose header parses is settled here.
            if (
              found.blobId === null && isLive(found, now) && !unverifiable(found) &&
              checkBytes(found, found.inline ?? EMPTY) === null && !(Header.parse(found.inline!, "Cache.has") instanceof CodecError)
            ) return Effect.succeed(true)
            return holds(found, now, probeRow)
          }
          return Effect.flatMap(toKey(input), (key) =>
            Effect.flatMap(probeRow(key), (found) =>
              Option.isNone(found)
                ? Effect.succeed(false)
                : Effect.flatMap(Clock.currentTimeMillis, (now) => holds(found.value, now, probeRow))))
        }),
      touch: Effect.fn("Cache.touch")(function*(input: KeyInput, ttl?: Duration.DurationInput | null) {
        const checked = Validate.ttl("touch.ttl", ttl)
        if (checked instanceof ConfigError) return yield* checked
        const key = yield* toKey(input)
        const now = yield* Clock.currentTimeMillis
        const millis = checked === undefined ? config.defaultTtl : checked
        const expiresAt = millis === null ? null : now + millis
        if (signer === null) return yield* metadata.touch(key, expiresAt, now)
        // The signature covers the expiry: a signed entry is re-signed with its new expiry, and
        // only an entry that verifies now (and is not overwritten meanwhile) is renewed, so
        // touch never turns a forged row into a signed one.
        const found = yield* metadata.lookup(key)
        if (Option.isNone(found) || !isLive(found.value, now)) return false
        const record = found.value
        const bytes = record.blobId === null ? Option.some(record.inline ?? EMPTY) : yield* blobs.get(record.blobId)
        if (Option.isNone(bytes) || checkBytes(record, bytes.value) !== null) return false
        const to = signer.sign({ ...record, expiresAt }, bytes.value)
        return yield* metadata.touch(key, expiresAt, now, { from: record.checksum, to })
      }),
      invalidate: Effect.fn("Cache.invalidate")(function*(input: KeyInput) {
        const key = yield* toKey(input)
        return (yield* removeMatching({ keys: [key] })) > 0
      }),
      invalidateWhere: Effect.fn("Cache.invalidateWhere")(function*(input: InvalidateFilter) {
        const filter = Validate.fields("invalidateWhere", input, FILTER_OPTIONS)
        if (filter instanceof ConfigError) return yield* filter
        const { createdBefore, expiredOnly, namespace } = filter
        if (namespace === undefined && createdBefore === undefined && expiredOnly !== true && filter.params === undefined) {
          // `{ namspace: "tmp" }` or `{ namespace: undefined }` would match every entry.
          return yield* new ConfigError({
            reason: "Invalid",
            field: "invalidateWhere",
            description: "the filter is empty and would remove every entry; give namespace, params, createdBefore or expiredOnly: true, or call clear() to remove everything"
          })
        }
        const now = yield* Clock.currentTimeMillis
        const base = { namespace, createdBefore, expiredAt: expiredOnly === true ? now : undefined }
        if (filter.params === undefined) return yield* removeMatching(base)
        const wanted = yield* hasher.describe(filter.params as InvalidateFilter["params"] & object)
        const candidates = yield* metadata.select(base)
        let matched = candidates.filter((r) => {
          const params = parseJson(r.params)
          return params !== null && describedContains(params as any, wanted)
        })
        if (signer !== null) {
          // Params are trusted only under a valid signature: a row whose params were rewritten is
          // not matched by them (it is left for a read or verify to reject and remove).
          const verified: Array<EntryRecord> = []
          for (const candidate of matched) {
            // A listing may leave inline bytes out: those come with the row.
            const current = candidate.blobId === null ? Option.getOrNull(yield* metadata.lookup(candidate.key)) : candidate
            if (current === null || current.checksum !== candidate.checksum) continue
            const bytes = current.blobId === null
              ? Option.fromNullable(current.inline)
              : yield* Effect.orElseSucceed(blobs.get(current.blobId), () => Option.none<Uint8Array>())
            if (Option.isSome(bytes) && signer.verify(current, bytes.value, current.checksum)) verified.push(current)
          }
          matched = verified
          // Bound to the checksums verified, so an entry overwritten meanwhile is not removed.
          let removed = 0
          for (const record of matched) removed += yield* removeMatching({ ...base, keys: [record.key], checksum: record.checksum })
          return removed
        }
        const keys = matched.map((r) => r.key)
        return keys.length === 0 ? 0 : yield* removeMatching({ ...base, keys })
      }),
      clear: Effect.fn("Cache.clear")(function*() {
        const removed = yield* removeAll(yield* metadata.clear)
        yield* Effect.logDebug(`cacheness: cleared ${removed} entries`)
        return removed
      }),
      cleanupExpired: Effect.fn("Cache.cleanupExpired")(function*() {
        return yield* cleanupExpired(Number.POSITIVE_INFINITY)
      }),
      list: Effect.fn("Cache.list")(function*(options?: Parameters<Cache.Service["list"]>[0]) {
        const o = Validate.fields("list", options, LIST_OPTIONS)
        if (o instanceof ConfigError) return yield* o
        const valid = o as Parameters<Cache.Service["list"]>[0] & object
        return yield* metadata.listEntries(valid)
      }),
      stats: Effect.fn("Cache.stats")(function*(options?: StatsOptions) {
        const checked = Validate.fields("stats", options, {})
        if (checked instanceof ConfigError) return yield* checked
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
        read: <A>(key: CacheKey, options: GetOptions<A, any> | undefined) =>
          readProbed(key, options?.schema === undefined ? undefined : options, memoHit<A>),
        acquireLease: (key, holder, duration) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => metadata.acquireLease(key, holder, now + duration, now)),
        releaseLease: (key, holder) => metadata.releaseLease(key, holder),
        changeCount: () => {
          try {
            const count = metadata.changeCount()
            return count === NotSync ? undefined : count
          } catch {
            return undefined
          }
        },
        recordHit: (key) => Effect.flatMap(Clock.currentTimeMillis, (now) => metadata.recordAccess(key, now)),
        unsafe: fast === null ? null : {
          key: (params) => {
            const key = fast.key(params)
            return key === NotSync ? undefined : key
          },
          recordHit: fast.recordAccess
        }
      }
    })

    // Housekeeping: a background fiber for the layer's lifetime, bounded per run, never holding
    // up puts; interrupted when the layer's scope closes.
    const housekeeping = Effect.gen(function*() {
      yield* cleanupExpired(HOUSEKEEPING_LIMIT)
      yield* enforceSize((yield* metadata.totals).totalBytes)
      const removed = yield* removeStaleTemps
      if (removed > 0) yield* Effect.logDebug(`cacheness: removed ${removed} temp files abandoned by interrupted writes`)
      const pruned = yield* pruneFingerprints
      if (pruned > 0) yield* Effect.logDebug(`cacheness: dropped the fingerprints of ${pruned} paths that no longer exist`)
    }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("cacheness: housekeeping failed", cause)))
    // Read-only: no housekeeping at all, it only ever removes.
    if (config.readOnly !== true) yield* (config.cleanupOnOpen ? housekeeping : Effect.void).pipe(
      Effect.zipRight(Effect.repeat(Effect.delay(housekeeping, Duration.millis(config.cleanupInterval)), Schedule.forever)),
      // Its timer must not keep a process that forgot `close()` alive.
      asDaemon,
      Effect.interruptible,
      Effect.forkScoped
    )
    return service
  })

/**
 * Marks the directory as a cache, so backup tools skip it (https://bford.info/cachedir/). With
 * `permissions: "private"` the directory becomes 0700 and the metadata database is created 0600
 * before SQLite opens it (SQLite gives its -wal and -shm files the database file's mode).
 */
const markDirectory = (directory: string, permissions: ResolvedConfig["permissions"]) =>
  Effect.try({
    try: () => {
      const isPrivate = permissions === "private"
      fs.mkdirSync(directory, { recursive: true, mode: isPrivate ? 0o700 : undefined })
      if (isPrivate) {
        fs.chmodSync(directory, 0o700)
        const database = path.join(directory, "cacheness.db")
        fs.closeSync(fs.openSync(database, "a", 0o600))
        fs.chmodSync(database, 0o600)
      }
      const tag = path.join(directory, "CACHEDIR.TAG")
      if (!fs.existsSync(tag)) {
        fs.writeFileSync(
          tag,
          "Signature: 8a477f597d28d172789f06886806bc55\n# This file is a cache directory tag created by cacheness.\n# For information about cache directory tags see https://bford.info/cachedir/\n",
          { mode: isPrivate ? 0o600 : undefined }
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
      return MetadataStoreSqlite.layer({ filename: path.join(config.directory!, "cacheness.db"), tables, readOnly: config.readOnly })
    case "json":
      return MetadataStoreJson.layer({ filename: path.join(config.directory!, "cacheness.json"), tables, readOnly: config.readOnly })
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
      return BlobStoreFileSystem.layer({ directory: path.join(config.directory!, "blobs"), private: config.permissions === "private", readOnly: config.readOnly })
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
      CodecDefault.layer({ compression: config.compression, handlers: config.handlers, tables: config.tables }),
      blobLayer(config)
    )),
    Layer.provide(
      config.directory === null || config.readOnly === true ? Layer.empty : Layer.effectDiscard(markDirectory(config.directory, config.permissions))
    )
  )

/**
 * The engine over whatever Hasher, Codec, MetadataStore and BlobStore the context holds.
 * `options` are the engine's policies only (TTL, size limit, housekeeping, integrity, signing,
 * inline threshold, metadata tables); a field that picks or configures a store is a `ConfigError`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromServices = (
  options?: EngineOptions
): Layer.Layer<Cache, CacheError, Hasher | Codec | MetadataStore | BlobStore> =>
  Layer.scoped(Cache, Effect.flatMap(resolveEngineOptions(options), make))

/**
 * The cache a configuration describes, opened for looking only (`cacheness stats`, `list`, …):
 * nothing is created, migrated, recovered, cleaned up or recorded, and writes fail. Internal to
 * the CLI; not re-exported.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadOnly = (config?: CacheConfig): Layer.Layer<Cache, CacheError> =>
  Layer.unwrapEffect(Effect.map(resolveConfig(config, { memory: false }), (resolved) => fromResolved({ ...resolved, readOnly: true })))

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

