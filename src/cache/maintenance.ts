/**
 * Maintenance: removal of expired entries, the size limit (eviction after puts and in
 * housekeeping), `prune`, and the housekeeping schedule.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schedule from "effect/Schedule"
import type * as Scope from "effect/Scope"
import * as fs from "node:fs"
import { parseSize } from "../schema/CacheConfig.js"
import { asDaemon } from "../shared/daemonClock.js"
import * as Validate from "../shared/validate.js"
import { type Engine, notify } from "./context.js"
import * as FastPath from "./fastPath.js"
import { STALE_TEMP_AGE } from "./integrity.js"
import * as CacheMetrics from "./metrics.js"
import { ConfigError, type PruneOptions } from "./service.js"

/** Expired entries removed per statement, so a huge cleanup never holds the write lock for long. */
const CLEANUP_BATCH = 1_000
/** Entries a single housekeeping run removes at most; the next run continues. */
const HOUSEKEEPING_LIMIT = 20_000
/** Fingerprinted paths a housekeeping run checks at most; the next run continues after the last. */
const FINGERPRINT_PAGE = 5_000
/** Eviction frees space down to this fraction of `maxSize`. */
const EVICT_TO = 0.8
/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []

const PRUNE_OPTIONS = { onProgress: Validate.optionalFunction<NonNullable<PruneOptions["onProgress"]>> }

/**
 * The largest value a put accepts: what eviction keeps of `maxSize` (`null`: no limit).
 *
 * @since 0.1.0
 * @category size
 */
export const keepLimit = (maxSize: number | null): number | null =>
  maxSize === null ? null : Math.floor(maxSize * EVICT_TO)

/**
 * The maintenance operations over one engine.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (engine: Engine) => {
  const { config, metadata } = engine

  /** Evicts least-recently-used entries when the cache holds more than `maxSize`. */
  const enforceSize = (totalBytes: number) =>
    config.maxSize === null || totalBytes <= config.maxSize
      ? Effect.succeed(0)
      : Effect.gen(function*() {
        const evicted = yield* metadata.evict(totalBytes - Math.floor(config.maxSize! * EVICT_TO))
        yield* engine.deleteBlobs(evicted)
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
      return yield* new ConfigError({
        reason: "Invalid",
        field: "prune.target",
        description: `not a size: ${Validate.show(target)}`
      })
    }
    const { totalBytes } = yield* metadata.totals
    if (totalBytes <= targetBytes.value) return { entries: 0, bytes: 0 }
    const evicted = yield* metadata.evict(totalBytes - targetBytes.value)
    // Blob deletion is the slow part of a large prune: report it in chunks. The rows are gone,
    // so the blobs go too, whatever the callback does (`notify` isolates it).
    const chunk = 256
    for (let i = 0; i < evicted.length; i += chunk) {
      yield* engine.deleteBlobs(evicted.slice(i, i + chunk))
      yield* notify(options.onProgress, { done: Math.min(i + chunk, evicted.length), total: evicted.length })
    }
    CacheMetrics.evictions.unsafeUpdate(evicted.length, NO_LABELS)
    const bytes = evicted.reduce((n, r) => n + r.storedBytes, 0)
    yield* Effect.logDebug(
      `cacheness: pruned to ${targetBytes.value} bytes; evicted ${evicted.length} least-recently-used entries (${bytes} bytes)`
    )
    return { entries: evicted.length, bytes }
  })

  /** Removes up to `limit` expired entries (TTL is enforced here and on reads); how many went. */
  const cleanupExpired = (limit: number) =>
    Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      let removed = 0
      while (removed < limit) {
        const batch = yield* engine.removeMatching({ expiredAt: now, limit: Math.min(CLEANUP_BATCH, limit - removed) })
        removed += batch
        if (batch < CLEANUP_BATCH) break
      }
      if (removed > 0) {
        CacheMetrics.expirations.unsafeUpdate(removed, NO_LABELS)
        yield* Effect.logDebug(`cacheness: removed ${removed} expired entries`)
      }
      return removed
    })

  /**
   * Drops the stat fingerprints of paths that no longer exist — temp files hashed as key params,
   * say — so the table does not keep every path ever hashed. A page per housekeeping run,
   * resuming after the last path checked. Losing a fingerprint costs a re-hash, never a wrong
   * key, so a file recreated meanwhile is harmless.
   */
  let fingerprintCursor: string | null = null
  const pruneFingerprints = !FastPath.fingerprintsAreLocal(metadata) ? Effect.succeed(0) : Effect.gen(function*() {
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

  // Housekeeping: bounded per run, never holding up puts.
  const housekeeping = Effect.gen(function*() {
    yield* cleanupExpired(HOUSEKEEPING_LIMIT)
    yield* enforceSize((yield* metadata.totals).totalBytes)
    // Temp files of blob writes a crash abandoned. An hour is far longer than any write takes,
    // so a write in flight, in any process, is never touched.
    const removed = yield* FastPath.removeStaleTemp(engine.blobs, STALE_TEMP_AGE)
    if (removed > 0) yield* Effect.logDebug(`cacheness: removed ${removed} temp files abandoned by interrupted writes`)
    const pruned = yield* pruneFingerprints
    if (pruned > 0) {
      yield* Effect.logDebug(`cacheness: dropped the fingerprints of ${pruned} paths that no longer exist`)
    }
  }).pipe(Effect.catchAllCause((cause) => Effect.logWarning("cacheness: housekeeping failed", cause)))

  /** Starts housekeeping as a background fiber for the scope's lifetime (none when read-only). */
  const startHousekeeping: Effect.Effect<void, never, Scope.Scope> = config.readOnly === true
    // Read-only: no housekeeping at all, it only ever removes.
    ? Effect.void
    : Effect.asVoid((config.cleanupOnOpen ? housekeeping : Effect.void).pipe(
      Effect.zipRight(
        Effect.repeat(Effect.delay(housekeeping, Duration.millis(config.cleanupInterval)), Schedule.forever)
      ),
      // Its timer must not keep a process that forgot `close()` alive.
      asDaemon,
      Effect.interruptible,
      Effect.forkScoped
    ))

  return { enforceSize, prune, cleanupExpired, startHousekeeping }
}
