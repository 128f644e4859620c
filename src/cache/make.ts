/**
 * The engine: `make` assembles the `Cache` service from the four service tags in context
 * (Hasher, Codec, MetadataStore, BlobStore) and the engine's policies. Each operation lives in
 * the module of its job: reads in `read.ts`, puts in `write.ts`, TTL removal, the size limit and
 * housekeeping in `maintenance.ts`, checks and `verify` in `integrity.ts`. Choosing backends from
 * a configuration is `layer.ts`'s job.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as EffectContext from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as FiberSet from "effect/FiberSet"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Tracer from "effect/Tracer"
import type { BlobStore } from "../blob/service.js"
import type { Codec } from "../codec/service.js"
import { describedContains } from "../key/describeParams.js"
import type { Hasher } from "../key/service.js"
import { parseJson, toEntry } from "../metadata/entries.js"
import {
  type EntryRecord,
  goneAt,
  MetadataError,
  MetadataStore,
  type StoredValue,
  type Totals
} from "../metadata/service.js"
import type { CacheStats } from "../schema/CacheEntry.js"
import type { CacheKey, KeyInput } from "../schema/CacheKey.js"
import * as Validate from "../shared/validate.js"
import * as Batch from "./batch.js"
import * as Context from "./context.js"
import { queryMetadata } from "./customMetadata.js"
import * as FastPath from "./fastPath.js"
import { checkBytes, type IntegritySettings, makeVerify } from "./integrity.js"
import { attach } from "./internal.js"
import * as Maintenance from "./maintenance.js"
import * as MemoryTier from "./memoryTier.js"
import { type EngineOptions, resolveEngineOptions } from "./options.js"
import * as Read from "./read.js"
import {
  Cache,
  type CacheError,
  ConfigError,
  type GetOptions,
  type InvalidateFilter,
  type ResolvedConfig,
  type StatsOptions
} from "./service.js"
import * as Write from "./write.js"

const EMPTY = new Uint8Array(0)
const ORDERS: ReadonlyArray<unknown> = ["createdAt", "accessedAt", "expiresAt", "storedBytes", "hits", "key"]

const ORDER_CHECK: Validate.Check<unknown> = (field, input) =>
  input === undefined || ORDERS.includes(input)
    ? input
    : new ConfigError({
      reason: "Invalid",
      field,
      description: `must be one of ${ORDERS.join(", ")}, got ${Validate.show(input)}`
    })

/** The options of each operation, as a table of field checks (see `Validate.fields`). */
const LIST_OPTIONS = {
  limit: Validate.optionalCount,
  offset: Validate.optionalCount,
  namespace: Validate.optionalString,
  orderBy: ORDER_CHECK,
  descending: Validate.optionalBoolean,
  tag: Validate.optionalString
}
/** The span of `stats()`: no call-site stack (a `new Error()` per call). */
const STATS_SPAN = { captureStackTrace: false } as const

/** Effect's default tracer, whose spans go nowhere (no exporter sees them). */
const NATIVE_TRACER = Effect.runSync(Effect.tracer)

/**
 * `Effect.withSpan`, skipped while the fiber's tracer is Effect's default one, which records
 * nothing: there the span is pure cost (~8–14 µs with the cache's context, which it copies to
 * become the parent), more than the rest of a `stats()`. Under any other tracer (OpenTelemetry,
 * a test's) the span is made exactly as before.
 */
const withSpanIfTraced = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  name: string,
  options: Tracer.SpanOptions
): Effect.Effect<A, E, R> =>
  Effect.withFiberRuntime((fiber) =>
    EffectContext.get(fiber.currentDefaultServices, Tracer.Tracer) === NATIVE_TRACER
      ? self
      : Effect.withSpan(self, name, options)
  )

const STATS_OPTIONS = { namespace: Validate.optionalString }
const FILTER_OPTIONS = {
  namespace: Validate.optionalString,
  params: Validate.anything,
  createdBefore: Validate.optionalInstant,
  expiredOnly: Validate.optionalBoolean
}

type Ttl = Duration.DurationInput | null

const valueOf = <A>(value: A): A => value
const memoHit = <A>(value: A, record: StoredValue, stale: boolean) => ({
  value,
  expiresAt: record.expiresAt,
  staleUntil: goneAt(record),
  stale
})

/**
 * Builds the cache on the four services in context, under a resolved configuration (of which
 * the engine reads its policies, the directory `stats` reports and `readOnly`). Internal: users
 * build caches with `Cache.layerFromServices` or `Cache.layer`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (config: ResolvedConfig) =>
  Effect.gen(function*() {
    // With a memory tier, every write of this process makes the next read check the change count.
    let tier: MemoryTier.Tier | null = null
    const engine = yield* (config.memory == null
      ? Context.make(config)
      : Effect.updateService(
        Context.make(config),
        MetadataStore,
        (store) => {
          const watched = MemoryTier.watchWrites(store, () => tier?.forceCheck())
          // The synchronous upserts are writes too (watchWrites wraps the effectful ones).
          const unsafeUpsert: MetadataStore.Service["unsafeUpsert"] = (record, rows, leaseHolder) => {
            try {
              return store.unsafeUpsert(record, rows, leaseHolder)
            } finally {
              tier?.forceCheck()
            }
          }
          const unsafeUpsertMany: MetadataStore.Service["unsafeUpsertMany"] = (count, produce) => {
            try {
              return store.unsafeUpsertMany(count, produce)
            } finally {
              tier?.forceCheck()
            }
          }
          return { ...watched, unsafeUpsert, unsafeUpsertMany }
        }
      ))
    const { blobs, hasher, metadata, signer } = engine
    const settings: IntegritySettings = {
      signer,
      verifyIntegrity: config.verifyIntegrity,
      hashBytes: hasher.hashBytes,
      hashStream: hasher.hashStream,
      namespaceKey: engine.namespaceKey
    }
    const reads = Read.make(engine, settings)
    const maintenance = Maintenance.make(engine)
    const writes = Write.makeParts(engine, settings, maintenance.enforceSize)
    const put = writes.put
    const batches = Batch.make(engine, settings, reads, writes, maintenance.enforceSize)
    const verify = makeVerify(engine, settings)

    if (config.memory != null) {
      tier = MemoryTier.make(config.memory, FastPath.changeCount(metadata), FastPath.changeCountKind(metadata))
    }
    const tierReads = tier === null ? null : MemoryTier.makeReads(tier, {
      keySync: reads.unsafe === null ? null : reads.unsafe.key,
      toKey: engine.toKey,
      metadata,
      readProbed: reads.readProbed
    })

    const get = tierReads === null
      ? <A>(input: KeyInput, options?: GetOptions<A, any>) => reads.readProbed(input, options, valueOf)
      : tierReads.get

    const getWithMetadata = Effect.fn("Cache.getWithMetadata")(
      function*<A>(input: KeyInput, options?: GetOptions<A, any>) {
        return Option.map(
          yield* reads.read(input, options, metadata.lookup),
          (hit) => ({ value: hit.value, entry: toEntry(hit.record), stale: hit.stale })
        )
      }
    )

    const service = Cache.of({
      key: (params, options) => {
        const namespace = Read.readNamespaceOptions("key", options)
        return namespace instanceof ConfigError ? Effect.fail(namespace) : engine.toKey(params, namespace)
      },
      put,
      get: get as Cache.Service["get"],
      getWithMetadata: getWithMetadata as Cache.Service["getWithMetadata"],
      has: reads.has,
      getMany: batches.getMany,
      putMany: batches.putMany,
      invalidateMany: batches.invalidateMany,
      invalidateTags: batches.invalidateTags,
      touch: Effect.fn("Cache.touch")(function*(input: KeyInput, ttl?: Ttl, options?: unknown) {
        const checked = Validate.ttl("touch.ttl", ttl)
        if (checked instanceof ConfigError) return yield* checked
        const namespace = Read.readNamespaceOptions("touch", options)
        if (namespace instanceof ConfigError) return yield* namespace
        const key = yield* engine.toKey(input, namespace)
        const now = yield* Clock.currentTimeMillis
        const millis = checked === undefined ? config.defaultTtl : checked
        const expiresAt = millis === null ? null : now + millis
        if (signer === null) return yield* metadata.touch(key, expiresAt, now)
        // The signature covers the expiry: a signed entry is re-signed with its new expiry, and
        // only an entry that verifies now (and is not overwritten meanwhile) is renewed, so
        // touch never turns a forged row into a signed one.
        const found = yield* metadata.lookup(key)
        if (Option.isNone(found) || !Read.isLive(found.value, now)) return false
        const record = found.value
        const bytes = record.blobId === null ? Option.some(record.inline ?? EMPTY) : yield* blobs.get(record.blobId)
        if (Option.isNone(bytes) || checkBytes(settings, record, bytes.value) !== null) return false
        // The store keeps the entry's grace; the new signature covers the same end of grace.
        const gone = goneAt(record)
        const grace = record.expiresAt === null || gone === null ? 0 : Math.max(0, gone - record.expiresAt)
        const staleUntil = expiresAt === null ? null : expiresAt + grace
        const to = signer.sign({ ...record, expiresAt, staleUntil }, bytes.value)
        return yield* metadata.touch(key, expiresAt, now, { from: record.checksum, to })
      }),
      invalidate: Effect.fn("Cache.invalidate")(function*(input: KeyInput, options?: unknown) {
        const namespace = Read.readNamespaceOptions("invalidate", options)
        if (namespace instanceof ConfigError) return yield* namespace
        const key = yield* engine.toKey(input, namespace)
        return (yield* engine.removeMatching({ keys: [key] })) > 0
      }),
      invalidateWhere: Effect.fn("Cache.invalidateWhere")(function*(input: InvalidateFilter) {
        const filter = Validate.fields("invalidateWhere", input, FILTER_OPTIONS)
        if (filter instanceof ConfigError) return yield* filter
        const { createdBefore, expiredOnly, namespace } = filter
        if (
          namespace === undefined && createdBefore === undefined && expiredOnly !== true && filter.params === undefined
        ) {
          // `{ namspace: "tmp" }` or `{ namespace: undefined }` would match every entry.
          return yield* new ConfigError({
            reason: "Invalid",
            field: "invalidateWhere",
            description:
              "the filter is empty and would remove every entry; give namespace, params, createdBefore or expiredOnly: true, or call clear() to remove everything"
          })
        }
        const now = yield* Clock.currentTimeMillis
        const base = { namespace, createdBefore, expiredAt: expiredOnly === true ? now : undefined }
        if (filter.params === undefined) return yield* engine.removeMatching(base)
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
            const current = candidate.blobId === null
              ? Option.getOrNull(yield* metadata.lookup(candidate.key))
              : candidate
            if (current === null || current.checksum !== candidate.checksum) continue
            const bytes = current.blobId === null
              ? Option.fromNullable(current.inline)
              : yield* Effect.orElseSucceed(blobs.get(current.blobId), () => Option.none<Uint8Array>())
            if (Option.isSome(bytes) && signer.verify(current, bytes.value, current.checksum)) verified.push(current)
          }
          matched = verified
          // Bound to the checksums verified, so an entry overwritten meanwhile is not removed.
          let removed = 0
          for (const record of matched) {
            removed += yield* engine.removeMatching({ ...base, keys: [record.key], checksum: record.checksum })
          }
          return removed
        }
        const keys = matched.map((r) => r.key)
        return keys.length === 0 ? 0 : yield* engine.removeMatching({ ...base, keys })
      }),
      clear: Effect.fn("Cache.clear")(function*() {
        const refs = yield* metadata.clear
        yield* engine.deleteBlobs(refs)
        yield* Effect.logDebug(`cacheness: cleared ${refs.length} entries`)
        return refs.length
      }),
      cleanupExpired: Effect.fn("Cache.cleanupExpired")(function*() {
        return yield* maintenance.cleanupExpired(Number.POSITIVE_INFINITY)
      }),
      list: Effect.fn("Cache.list")(function*(options?: Parameters<Cache.Service["list"]>[0]) {
        const o = Validate.fields("list", options, LIST_OPTIONS)
        if (o instanceof ConfigError) return yield* o
        return yield* FastPath.listEntries(metadata, o as Parameters<Cache.Service["list"]>[0] & object)
      }),
      // A span like every management operation, without `Effect.fn`'s generator and call-site
      // capture: `stats()` is one counters row (~3 µs), and those cost it ~15 µs more, the span
      // itself ~12 (issue 21: count + total ≤ 2× diskcache's `len` + `volume()`, ~20 µs).
      stats: (options?: StatsOptions) =>
        withSpanIfTraced(
          Effect.suspend((): Effect.Effect<CacheStats, ConfigError | MetadataError> => {
            const checked = Validate.fields("stats", options, STATS_OPTIONS)
            if (checked instanceof ConfigError) return Effect.fail(checked)
            // Field by field: a spread followed by more fields takes V8's slow path (~2 µs here).
            const answer = (totals: Totals, counted: { readonly entries: number; readonly totalBytes: number }) => {
              const lookups = totals.hits + totals.misses
              return {
                entries: counted.entries,
                totalBytes: counted.totalBytes,
                hits: totals.hits,
                misses: totals.misses,
                hitRate: lookups === 0 ? 0 : totals.hits / lookups,
                directory: config.directory,
                maxSize: config.maxSize,
                backend: metadata.backend
              }
            }
            // One namespace: its counted entries and bytes; hits and misses are not kept per namespace.
            const namespace = checked.namespace
            return namespace === undefined
              ? Effect.map(metadata.totals, (totals) => answer(totals, totals))
              : Effect.flatMap(
                metadata.totals,
                (totals) => Effect.map(metadata.namespaceTotals(namespace), (counted) => answer(totals, counted))
              )
          }),
          "Cache.stats",
          STATS_SPAN
        ),
      prune: maintenance.prune,
      verify,
      queryMetadata: ((table, filter, options) =>
        Effect.flatMap(
          Clock.currentTimeMillis,
          (now) => queryMetadata(metadata, engine.tables, table, filter, options, now, toEntry)
        )) as Cache.Service[
          "queryMetadata"
        ],
      sql: metadata.sql === null
        ? Effect.fail(
          new MetadataError({
            method: "Cache.sql",
            reason: "Unsupported",
            description: `the ${metadata.backend} metadata backend has no SQL; use sqlite or postgres`
          })
        )
        : Effect.succeed(metadata.sql)
    })

    // Background recomputations of `cached` (stale-while-revalidate, refresh-ahead) live in the
    // layer's scope: closing the cache interrupts them.
    const background = yield* FiberSet.make<void, never>()

    const leaseIfAbsent = metadata.acquireLeaseIfAbsent
    attach(service, {
      config,
      memo: {
        read: <A>(key: CacheKey, options: GetOptions<A, any> | undefined) =>
          reads.readProbed(
            key,
            options?.schema === undefined && options?.allowStale !== true ? undefined : options,
            memoHit<A>
          ),
        acquireLease: (key, holder, duration) =>
          Effect.flatMap(Clock.currentTimeMillis, (now) => metadata.acquireLease(key, holder, now + duration, now)),
        acquireLeaseAt: (key, holder, duration, now) => metadata.acquireLease(key, holder, now + duration, now),
        acquireLeaseIfAbsentAt: leaseIfAbsent == null
          ? null
          : (key, holder, duration, now, liveAt) => leaseIfAbsent(key, holder, now + duration, now, liveAt),
        releaseLease: (key, holder) => metadata.releaseLease(key, holder),
        putReleasing: writes.putReleasing,
        // The memo trusts an unchanged count as proof: a pushed one (PostgreSQL NOTIFY) is not.
        changeCount: FastPath.changeCountKind(metadata) === "exact" ? FastPath.changeCount(metadata) : () => undefined,
        expiryOf: (key) =>
          Effect.map(reads.probeRow(key), (found) => Option.isNone(found) ? undefined : found.value.expiresAt),
        fork: (effect) => Effect.asVoid(FiberSet.run(background, effect)),
        recordHit: (key) => Effect.flatMap(Clock.currentTimeMillis, (now) => metadata.recordAccess(key, now)),
        unsafe: reads.unsafe
      },
      tier: tierReads === null ? null : { unsafeGet: tierReads.unsafeGet, stats: tier!.stats },
      unsafePut: writes.unsafePut
    })

    // Housekeeping: a background fiber for the layer's lifetime, interrupted when its scope closes.
    yield* maintenance.startHousekeeping
    return service
  })

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
