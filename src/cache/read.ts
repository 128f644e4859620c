/**
 * The read path. One pure read decision (`decide`: entry, now → miss, bytes to serve, a blob to
 * read, broken, or a format this process cannot read) is taken by every read: `get`'s
 * synchronous fast path and its effectful shell, `has`, `getWithMetadata` and `cached`. Where
 * TTL gets checked on a read: `isLive` (fresh) and `freshness` (fresh, stale inside its grace, or
 * gone), inside `decide`.
 *
 * @since 0.1.0
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Header from "../codec/header.js"
import type { Placed } from "../codec/service.js"
import { goneAt, type StoredValue } from "../metadata/service.js"
import { type CacheKey, isCacheKey, type KeyInput } from "../schema/CacheKey.js"
import * as BufferPool from "../shared/bufferPool.js"
import { NotSync } from "../shared/sync.js"
import * as Validate from "../shared/validate.js"
import type { Engine } from "./context.js"
import * as FastPath from "./fastPath.js"
import {
  checkBytes,
  checkPlaced,
  HASH_WHILE_READING,
  type IntegritySettings,
  OTHER_KEY,
  type PieceHash,
  pieceHash,
  readStoredBlob,
  readStoredPlaced,
  unverifiable
} from "./integrity.js"
import * as CacheMetrics from "./metrics.js"
import { type CacheError, CodecError, ConfigError, type GetOptions } from "./service.js"

/** Hot-path metric updates carry no extra labels (see CacheMetrics). */
const NO_LABELS: ReadonlyArray<never> = []
const EMPTY = new Uint8Array(0)

const GET_OPTIONS = {
  schema: Validate.optionalSchema,
  namespace: Validate.optionalString,
  allowStale: Validate.optionalBoolean
}
const NAMESPACE_OPTIONS = { namespace: Validate.optionalString }

/**
 * Options of the operations naming one entry (`has`, `touch`, `invalidate`, `key`): its namespace,
 * checked like every option (an unknown field is a `ConfigError`).
 *
 * @since 0.1.0
 * @category options
 */
export const readNamespaceOptions = (method: string, options: unknown): string | undefined | ConfigError => {
  if (options === undefined) return undefined
  const o = Validate.fields(method, options, NAMESPACE_OPTIONS)
  return o instanceof ConfigError ? o : o.namespace
}

/**
 * The namespace of `get` options that hold nothing else (the fast path serves those), `NotSync`
 * for any other options (the effectful path checks them).
 */
const namespaceOnly = (options: object): string | undefined | NotSync => {
  for (const field in options) if (field !== "namespace") return NotSync
  const namespace = (options as { readonly namespace?: unknown }).namespace
  return namespace === undefined || typeof namespace === "string" ? namespace : NotSync
}

/**
 * Whether an entry expiring at `expiresAt` (epoch ms, `null` never) is live at `now`.
 *
 * @since 0.1.0
 * @category decision
 */
export const isLiveAt = (expiresAt: number | null, now: number): boolean => expiresAt === null || expiresAt > now

/**
 * @since 0.1.0
 * @category decision
 */
export const isLive = (record: StoredValue, now: number): boolean => isLiveAt(record.expiresAt, now)

/**
 * Where an entry stands at `now`: `fresh` until its expiry, `stale` until the end of its grace
 * (`staleUntil`: servable only to who allows it), `gone` after.
 *
 * @since 0.1.0
 * @category decision
 */
export type Freshness = "fresh" | "stale" | "gone"

/**
 * @since 0.1.0
 * @category decision
 */
export const freshnessAt = (expiresAt: number | null, staleUntil: number | null, now: number): Freshness =>
  expiresAt === null || expiresAt > now ? "fresh" : staleUntil !== null && staleUntil > now ? "stale" : "gone"

/**
 * @since 0.1.0
 * @category decision
 */
export const freshness = (record: StoredValue, now: number): Freshness =>
  freshnessAt(record.expiresAt, goneAt(record), now)

/**
 * What a read does with an entry.
 *
 * - `Miss`: absent, expired, or signed under a key this cache lacks (kept: it cannot be checked);
 * - `Bytes`: the stored bytes check out and their header parses: decode (or, for `has`, a hit);
 * - `ReadBlob`: the bytes are in the blob store: read them and decide again with them;
 * - `Broken`: damaged; removed and reported as a miss;
 * - `UnknownFormat`: written by a release or a process with a handler this one lacks: a miss, kept.
 *
 * @since 0.1.0
 * @category decision
 */
export type ReadDecision =
  | { readonly _tag: "Miss" }
  | { readonly _tag: "Bytes"; readonly bytes: Uint8Array }
  | { readonly _tag: "ReadBlob"; readonly blobId: string }
  | { readonly _tag: "Broken"; readonly reason: string }
  | { readonly _tag: "UnknownFormat"; readonly reason: string }

const MISS: ReadDecision = { _tag: "Miss" }

/**
 * The one read decision. `bytes` are the entry's stored bytes when already read (a blob);
 * without them an inline entry is judged on its row and a blob entry asks for its blob. A stale
 * entry (past its TTL, inside its grace) is a miss unless `allowStale`; a gone one always is.
 * `digest` is the plain hash of `bytes` when it was computed as they were read.
 *
 * @since 0.1.0
 * @category decision
 */
export const decide = (
  record: StoredValue | null,
  now: number,
  settings: IntegritySettings,
  bytes?: Uint8Array,
  allowStale = false,
  digest?: string | undefined
): ReadDecision => {
  if (
    record === null || (allowStale ? freshness(record, now) === "gone" : !isLive(record, now)) ||
    unverifiable(settings, record)
  ) return MISS
  if (bytes === undefined) {
    if (record.blobId !== null) return { _tag: "ReadBlob", blobId: record.blobId }
    bytes = record.inline ?? EMPTY
  }
  const problem = checkBytes(settings, record, bytes, digest)
  if (problem !== null) return { _tag: "Broken", reason: problem }
  const header = Header.parse(bytes, "Cache.read")
  if (header instanceof CodecError) {
    return header.reason === "UnknownFormat"
      ? { _tag: "UnknownFormat", reason: header.message }
      : { _tag: "Broken", reason: `could not be decoded (${header.message})` }
  }
  return { _tag: "Bytes", bytes }
}

/**
 * `get` options checked (an unknown field is a `ConfigError`): a schema, the namespace, and
 * whether a stale entry may be served.
 *
 * @since 0.1.0
 * @category options
 */
export const readGetOptions = (method: string, options: unknown) => {
  if (options === undefined) return undefined
  const o = Validate.fields(method, options, GET_OPTIONS)
  if (o instanceof ConfigError) return o
  return o.schema === undefined && o.allowStale !== true
    ? undefined
    : { schema: o.schema, allowStale: o.allowStale === true }
}

type Fetch<R extends StoredValue> = (key: string) => Effect.Effect<Option.Option<R>, CacheError>

/**
 * The read operations over one engine.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (engine: Engine, settings: IntegritySettings) => {
  const { clock, codec, hasher, metadata, sinceMs } = engine
  const countMiss = (started: bigint) => {
    CacheMetrics.misses.unsafeUpdate(1, NO_LABELS)
    CacheMetrics.getLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
  }
  const countHit = (record: StoredValue, started: bigint) => {
    CacheMetrics.hits.unsafeUpdate(1, NO_LABELS)
    CacheMetrics.bytesRead.unsafeUpdate(record.storedBytes, NO_LABELS)
    CacheMetrics.getLatency.unsafeUpdate(sinceMs(started), NO_LABELS)
  }
  /**
   * `countHit` and `countMiss` for the entries of a batch settled together: the counters moved
   * once, one latency read for all (each entry is still one observation).
   */
  const countMany = (hits: number, bytes: number, misses: number, started: bigint) => {
    if (hits > 0) {
      CacheMetrics.hits.unsafeUpdate(hits, NO_LABELS)
      CacheMetrics.bytesRead.unsafeUpdate(bytes, NO_LABELS)
    }
    if (misses > 0) CacheMetrics.misses.unsafeUpdate(misses, NO_LABELS)
    const latency = sinceMs(started)
    for (let i = hits + misses; i > 0; i--) CacheMetrics.getLatency.unsafeUpdate(latency, NO_LABELS)
  }
  /**
   * How reads find an entry. A signature covers row fields a probe does not return, so with a
   * signing key every read looks up the whole row (and the synchronous fast path, which probes,
   * is off).
   */
  const probeRow: Fetch<StoredValue> = settings.signer === null ? metadata.probe : metadata.lookup

  /**
   * Whether `record`'s blob may be read into the places its codec chooses (`BlobStore.getPlaced`,
   * `Codec.Service.place`: a large array stored raw, straight into the array returned). Not with a
   * signing key (the signature is checked over the bytes in one piece), nor where plain checksums
   * are checked without a streaming hash; and only for blobs large enough to gain.
   */
  const placeable = (record: StoredValue): boolean =>
    engine.blobs.getPlaced !== undefined && codec.place !== undefined && settings.signer === null &&
    record.storedBytes >= HASH_WHILE_READING && (!settings.verifyIntegrity || settings.hashStream !== undefined)

  /**
   * One version's blob as read: whole (`bytes`), or into the views `Codec.place` chose (`placed`,
   * `views` as the store filled them: fewer bytes than planned when the file ended early), with
   * the digest of its pieces when `hashing` saw exactly the bytes returned.
   */
  type Read =
    | { readonly bytes: Uint8Array; readonly digest: string | undefined }
    | {
      readonly placed: Placed
      readonly views: ReadonlyArray<Uint8Array>
      readonly digest: string | undefined
    }

  const readVersion = (
    record: StoredValue,
    hashing: PieceHash | undefined,
    placing: boolean
  ): Effect.Effect<Option.Option<Read>, CacheError> => {
    const id = record.blobId!
    if (!placing || !placeable(record)) {
      return Effect.map(
        readStoredBlob(engine, id, hashing?.onPiece),
        Option.map((bytes): Read => ({ bytes, digest: hashing?.digestOf(bytes) }))
      )
    }
    let placed: Placed | undefined
    const place = (head: Uint8Array, size: number) => {
      placed = size === record.storedBytes ? codec.place!(head, size) : undefined
      return placed
    }
    return Effect.map(
      readStoredPlaced(engine, id, place, hashing?.onPiece),
      Option.map((views): Read => {
        if (placed === undefined) return { bytes: views[0]!, digest: hashing?.digestOf(views[0]!) }
        const digest = hashing?.digestOfViews(views)
        // Pieces that do not tile the views (a store off its contract) leave nothing to trust:
        // the bytes are put together and hashed whole.
        return settings.verifyIntegrity && digest === undefined
          ? { bytes: Buffer.concat(views), digest: undefined }
          : { placed, views, digest }
      })
    )
  }

  /**
   * The blob of an entry; `None` when it is gone. A concurrent overwrite or invalidation may have
   * deleted the version we were about to read: then the current version is read instead (blob or
   * inline), or a miss when the entry is gone — neither is damage. Only a blob missing under an
   * unchanged entry is dropped, with a warning. `hashing` sees the pieces of `record`'s own blob
   * only, and only it may be placed (a version read instead is read whole).
   */
  const readBlob = <R extends StoredValue>(
    record: R,
    refresh: Fetch<R>,
    hashing?: PieceHash,
    placing = false
  ): Effect.Effect<Option.Option<readonly [R, Read]>, CacheError> =>
    Effect.flatMap(readVersion(record, hashing, placing), (blob) => {
      if (Option.isSome(blob)) return Effect.succeed(Option.some([record, blob.value] as const))
      return Effect.flatMap(
        refresh(record.key),
        (current): Effect.Effect<Option.Option<readonly [R, Read]>, CacheError> => {
          if (Option.isNone(current)) return Effect.succeed(Option.none())
          const next = current.value
          if (next.blobId === record.blobId && next.checksum === record.checksum) {
            return Effect.as(engine.dropBroken(record, `has no readable blob (${record.blobId})`), Option.none())
          }
          if (next.blobId === null) {
            return Effect.succeed(Option.some([next, { bytes: next.inline ?? EMPTY, digest: undefined }] as const))
          }
          return readBlob(next, refresh)
        }
      )
    })

  /**
   * `decide` for bytes as read: placed ones are judged on their header view and length, with the
   * digest of their pieces (`checkPlaced`), and served as `Placed`.
   */
  const judge = (
    record: StoredValue,
    read: Read,
    now: number,
    allowStale: boolean
  ): { readonly _tag: "Placed"; readonly placed: Placed } | ReadDecision => {
    if ("bytes" in read) return decide(record, now, settings, read.bytes, allowStale, read.digest)
    if ((allowStale ? freshness(record, now) === "gone" : !isLive(record, now)) || unverifiable(settings, record)) {
      return MISS
    }
    let length = 0
    for (const view of read.views) length += view.byteLength
    const problem = checkPlaced(settings, record, read.views[0] ?? EMPTY, length, read.digest)
    return problem === null ? { _tag: "Placed", placed: read.placed } : { _tag: "Broken", reason: problem }
  }

  /**
   * Carries a decision through its effects: reads the blob it asks for (deciding again on its
   * bytes; with `placing`, into the places its codec chooses) and removes what is broken. The bytes
   * to serve, with the version they belong to, or `None` for a miss.
   */
  const settle = Effect.fnUntraced(function*<R extends StoredValue>(
    found: R,
    first: ReadDecision,
    now: number,
    fetch: Fetch<R>,
    logUnknown: boolean,
    allowStale = false,
    placing = false
  ) {
    let record = found
    let decision: ReturnType<typeof judge> = first
    let read: Read = { bytes: record.inline ?? EMPTY, digest: undefined }
    if (decision._tag === "ReadBlob") {
      // A large blob is hashed piece by piece while the rest of it is read; the digest counts
      // only when it covers exactly the bytes returned for this version.
      const blob = yield* readBlob(record, fetch, pieceHash(settings, record), placing)
      if (Option.isNone(blob)) return Option.none<readonly [R, Uint8Array | Placed]>()
      record = blob.value[0]
      read = blob.value[1]
      decision = judge(record, read, now, allowStale)
    }
    switch (decision._tag) {
      case "Bytes":
        return Option.some([record, decision.bytes] as const)
      case "Placed":
        return Option.some([record, decision.placed] as const)
      case "Broken":
        if (decision.reason === OTHER_KEY && !("namespace" in record)) {
          // Rekeyed by the namespace migration, its header may name the old key: the whole row
          // (with its namespace) decides, if it is still the version examined.
          const full = Option.getOrNull(yield* metadata.lookup(record.key))
          if (full !== null && full.checksum === record.checksum && full.blobId === record.blobId) {
            const again = judge(full, read, now, false)
            if (again._tag === "Bytes") return Option.some([record, again.bytes] as const)
            if (again._tag === "Placed") return Option.some([record, again.placed] as const)
          }
        }
        yield* engine.dropBroken(record, decision.reason)
        return Option.none<readonly [R, Uint8Array | Placed]>()
      case "UnknownFormat":
        // A format this release does not know may belong to another process: a miss, kept.
        if (logUnknown) {
          yield* Effect.logWarning(
            `cacheness: entry ${record.key} cannot be read here (${decision.reason}); kept, treated as a miss`
          )
        }
        return Option.none<readonly [R, Uint8Array | Placed]>()
      default:
        return Option.none<readonly [R, Uint8Array | Placed]>()
    }
  })

  const recordMiss = (now: number, started: bigint) =>
    Effect.as(Effect.zipRight(metadata.recordAccess(null, now), Effect.sync(() => countMiss(started))), Option.none())

  /**
   * What a read does once the entry is found and decided: the decision settled, the bytes
   * decoded, the access recorded.
   */
  const serve = Effect.fnUntraced(function*<A, R extends StoredValue>(
    key: string,
    found: R,
    decision: ReadDecision,
    now: number,
    started: bigint,
    checked: { readonly schema: GetOptions<A, any>["schema"]; readonly allowStale: boolean } | undefined,
    fetch: Fetch<R>
  ) {
    const settled = yield* settle(found, decision, now, fetch, true, checked?.allowStale, true)
    if (Option.isNone(settled)) return yield* recordMiss(now, started)
    const [record, bytes] = settled.value
    const options = checked?.schema === undefined ? undefined : { schema: checked.schema }
    const decoded = yield* Effect.either(
      bytes instanceof Uint8Array ? codec.decode(bytes, options) : bytes.decode(options)
    )
    if (decoded._tag === "Left") {
      // A format (or version, or codec) this process has no handler for is not damage: another
      // process may own the handler, so the entry is a miss here and stays.
      if (decoded.left.reason === "UnknownFormat") {
        yield* Effect.logWarning(
          `cacheness: entry ${record.key} cannot be read here (${decoded.left.message}); kept, treated as a miss`
        )
      } else {
        yield* engine.dropBroken(record, `could not be decoded (${decoded.left.message})`)
      }
      return yield* recordMiss(now, started)
    }
    // A large blob was read into a pooled buffer: when the value copied out what it keeps, the
    // buffer serves the next large read or put instead of new memory being faulted in.
    // (A blob read into its value's own memory leaves nothing to give.)
    if (record.blobId !== null && bytes instanceof Uint8Array && !FastPath.retainsBytes(codec, bytes)) {
      BufferPool.give(bytes)
    }
    yield* metadata.recordAccess(key, now)
    countHit(record, started)
    return Option.some({ value: decoded.right as A, record, stale: !isLive(record, now) })
  })

  /**
   * The effectful read shared by `get`, `getWithMetadata` and `cached`. It is the hottest code of
   * the library, so it is untraced (a span costs ~7–10 µs here, more than half the budget of a hit).
   */
  const read = Effect.fnUntraced(function*<A, R extends StoredValue>(
    input: KeyInput,
    options: GetOptions<A, any> | undefined,
    fetch: Fetch<R>
  ) {
    const started = clock.unsafeCurrentTimeNanos()
    const checked = readGetOptions("get", options)
    if (checked instanceof ConfigError) return yield* checked
    const key = yield* engine.toKey(input, options?.namespace)
    const now = yield* Clock.currentTimeMillis
    const found = Option.getOrNull(yield* fetch(key))
    const decision = decide(found, now, settings, undefined, checked?.allowStale)
    if (decision._tag === "Miss") return yield* recordMiss(now, started)
    return yield* serve(key, found!, decision, now, started, checked, fetch)
  })

  /**
   * The synchronous fast path: on when the stores answer synchronously and no signature needs
   * the whole row.
   */
  const fast = settings.signer === null
  /**
   * The key synchronously, or `NotSync` when only `toKey` can tell (paths, bad input, a CacheKey
   * given with a namespace).
   */
  const fastKey = (input: KeyInput, namespace?: string | undefined): CacheKey | NotSync => {
    if (!fast) return NotSync
    if (namespace === undefined || namespace === "") {
      return typeof input === "string" ? (isCacheKey(input) ? input : NotSync) : FastPath.keySync(hasher, input)
    }
    if (typeof input === "string") return NotSync
    const key = FastPath.keySync(hasher, input)
    return key === NotSync ? NotSync : engine.namespaceKey(namespace, key) as CacheKey
  }

  /**
   * A read, settled synchronously when the stores can: a live inline entry is decoded and
   * returned in one step, skipping the effect runtime between services (each step through it
   * costs ~0.3–1 µs, and a hit's whole budget is ~18). Anything else continues from the same
   * decision on `serve` (or on `read` when the key or the entry cannot be had synchronously).
   */
  const readProbed = <A, B>(
    input: KeyInput,
    options: GetOptions<A, any> | undefined,
    project: (value: A, record: StoredValue, stale: boolean) => B
  ): Effect.Effect<Option.Option<B>, CacheError> => {
    const namespace = options === undefined ? undefined : namespaceOnly(options)
    return !fast || namespace === NotSync
      ? Effect.map(read(input, options, probeRow), Option.map((hit) => project(hit.value as A, hit.record, hit.stale)))
      : Effect.withFiberRuntime((fiber) => {
        const started = clock.unsafeCurrentTimeNanos()
        const key = fastKey(input, namespace)
        const found = key === NotSync ? NotSync : FastPath.probeSync(metadata, key)
        if (found === NotSync) {
          return Effect.map(
            read(input, options, probeRow),
            Option.map((hit) => project(hit.value as A, hit.record, hit.stale))
          )
        }
        // The fiber's clock, as `Clock.currentTimeMillis` would read it (a TestClock in tests).
        const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        const decision = decide(found, now, settings)
        if (decision._tag === "Miss") {
          const recorded = FastPath.recordAccessSync(metadata, null, now)
          countMiss(started)
          return recorded === NotSync
            ? Effect.as(metadata.recordAccess(null, now), Option.none())
            : Effect.succeed(Option.none())
        }
        if (decision._tag === "Bytes") {
          const decoded = FastPath.decodeSync(codec, decision.bytes)
          if (decoded !== NotSync) {
            const recorded = FastPath.recordAccessSync(metadata, key as CacheKey, now)
            countHit(found!, started)
            const hit = Option.some(project(decoded as A, found!, false))
            return recorded === NotSync
              ? Effect.as(metadata.recordAccess(key as CacheKey, now), hit)
              : Effect.succeed(hit)
          }
        }
        return Effect.map(
          serve(key as CacheKey, found!, decision, now, started, undefined, probeRow),
          Option.map((hit) => project(hit.value as A, hit.record, hit.stale))
        )
      })
  }

  /**
   * `has`: the decision `get` takes before decoding — expiry, signature, blob present, size,
   * checksum, key slot, a header that parses — and the same removal of what is broken, without
   * counting a hit or a miss and without decoding the payload.
   */
  const holds = (found: StoredValue | null, decision: ReadDecision, now: number): Effect.Effect<boolean, CacheError> =>
    decision._tag === "Bytes"
      ? Effect.succeed(true)
      : decision._tag === "Miss"
      ? Effect.succeed(false)
      : Effect.map(settle(found!, decision, now, probeRow, false), Option.isSome)

  const has = (input: KeyInput, options?: unknown): Effect.Effect<boolean, CacheError> => {
    const namespace = readNamespaceOptions("has", options)
    if (namespace instanceof ConfigError) return Effect.fail(namespace)
    return Effect.withFiberRuntime((fiber) => {
      const key = fastKey(input, namespace)
      const found = key === NotSync ? NotSync : FastPath.probeSync(metadata, key)
      if (found !== NotSync) {
        const now = Context.get(fiber.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis()
        return holds(found, decide(found, now, settings), now)
      }
      return Effect.flatMap(
        engine.toKey(input, namespace),
        (key) =>
          Effect.flatMap(probeRow(key), (found) =>
            Option.isNone(found)
              ? Effect.succeed(false)
              : Effect.map(Clock.currentTimeMillis, (now) => [found.value, now] as const).pipe(
                Effect.flatMap(([record, now]) => holds(record, decide(record, now, settings), now))
              ))
      )
    })
  }

  /** Whether a fast path exists, and its synchronous parts for `cached`'s memory hits. */
  const unsafe = !fast ? null : {
    key: (params: Parameters<typeof hasher.unsafeKey>[0], namespace?: string) => {
      const key = FastPath.keySync(hasher, params)
      return key === NotSync
        ? undefined
        : namespace === undefined || namespace === ""
        ? key
        : engine.namespaceKey(namespace, key) as CacheKey
    },
    recordHit: (key: CacheKey, now: number) => FastPath.recordAccessSync(metadata, key, now),
    /**
     * `readProbed` without options, settled synchronously or not at all: a live inline entry
     * decoded, or `null` for a miss — each counted and recorded as `get` would — else `NotSync`
     * (nothing counted or recorded: the effectful read then decides).
     */
    read: (key: CacheKey, now: number): { readonly value: unknown; readonly record: StoredValue } | null | NotSync => {
      const started = clock.unsafeCurrentTimeNanos()
      const found = FastPath.probeSync(metadata, key)
      if (found === NotSync) return NotSync
      const decision = decide(found, now, settings)
      if (decision._tag === "Miss") {
        if (FastPath.recordAccessSync(metadata, null, now) === NotSync) return NotSync
        countMiss(started)
        return null
      }
      if (decision._tag !== "Bytes") return NotSync
      const decoded = FastPath.decodeSync(codec, decision.bytes)
      if (decoded === NotSync || FastPath.recordAccessSync(metadata, key, now) === NotSync) return NotSync
      countHit(found!, started)
      return { value: decoded, record: found! }
    }
  }

  return { read, readProbed, has, unsafe, probeRow, serve, recordMiss, countHit, countMiss, countMany }
}
