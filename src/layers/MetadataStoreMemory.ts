/**
 * The in-memory metadata store: a Map, no disk. A product feature for tests and ephemeral caches,
 * held to the same contract suite as the SQLite store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { EntryFilter, EntryRecord, ListOptions, PathFingerprint, RemovedRef } from "../services/MetadataStore.js"
import { MetadataStore } from "../services/MetadataStore.js"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

const matches = (record: EntryRecord, filter: EntryFilter, keySet: Set<string> | undefined): boolean =>
  (keySet === undefined || keySet.has(record.key)) &&
  (filter.namespace === undefined || record.namespace === filter.namespace) &&
  (filter.createdBefore === undefined || record.createdAt < filter.createdBefore) &&
  (filter.expiredAt === undefined || (record.expiresAt !== null && record.expiresAt <= filter.expiredAt)) &&
  (filter.checksum === undefined || record.checksum === filter.checksum)

const toRef = (record: EntryRecord): RemovedRef => ({
  key: record.key,
  blobId: record.blobId,
  storedBytes: record.storedBytes
})

/**
 * Compares two records for listing; `key` breaks ties so the order is total.
 */
const compareBy = (options: ListOptions) => {
  const field = options.orderBy ?? "createdAt"
  const sign = options.descending === true ? -1 : 1
  return (a: EntryRecord, b: EntryRecord): number => {
    const x = a[field] ?? Number.POSITIVE_INFINITY
    const y = b[field] ?? Number.POSITIVE_INFINITY
    const c = x < y ? -1 : x > y ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0
    return c * sign
  }
}

/**
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<MetadataStore["Type"]> = Effect.sync(() => {
  const rows = new Map<string, Mutable<EntryRecord>>()
  const fingerprints = new Map<string, PathFingerprint>()
  let hits = 0
  let misses = 0
  let totalBytes = 0
  // Every writer goes through this object, so counting its writes tells `changeCount` everything.
  let writes = 0
  const leases = new Map<string, { holder: string; until: number }>()

  const removeRecords = (records: Iterable<EntryRecord>): ReadonlyArray<RemovedRef> => {
    writes++
    const removed: Array<RemovedRef> = []
    for (const record of records) {
      rows.delete(record.key)
      totalBytes -= record.storedBytes
      removed.push(toRef(record))
    }
    return removed
  }

  const selectRecords = (filter: EntryFilter): Array<EntryRecord> => {
    const keySet = filter.keys === undefined ? undefined : new Set(filter.keys)
    const source: Iterable<EntryRecord> = keySet === undefined
      ? rows.values()
      : Array.from(keySet, (k) => rows.get(k)).filter((r): r is Mutable<EntryRecord> => r !== undefined)
    const out: Array<EntryRecord> = []
    for (const record of source) {
      if (filter.limit !== undefined && out.length >= filter.limit) break
      if (matches(record, filter, keySet)) out.push(record)
    }
    return out
  }

  return MetadataStore.of({
    backend: "memory",
    // Inline bytes are copied in and out: callers may hold views into pooled or user-owned memory.
    lookup: (key) =>
      Effect.sync(() => {
        const record = rows.get(key)
        return record === undefined
          ? Option.none()
          : Option.some(record.inline === null ? { ...record } : { ...record, inline: Uint8Array.from(record.inline) })
      }),
    probe: (key) =>
      Effect.sync(() => {
        const record = rows.get(key)
        return record === undefined
          ? Option.none()
          : Option.some(record.inline === null ? { ...record } : { ...record, inline: Uint8Array.from(record.inline) })
      }),
    upsert: (record) =>
      Effect.sync(() => {
        writes++
        const previous = rows.get(record.key)
        if (previous !== undefined) totalBytes -= previous.storedBytes
        rows.set(record.key, { ...record, inline: record.inline === null ? null : Uint8Array.from(record.inline), hits: 0 })
        totalBytes += record.storedBytes
        const replaced = previous?.blobId ?? null
        return { replacedBlobId: replaced === record.blobId ? null : replaced, totalBytes }
      }),
    remove: (filter) => Effect.sync(() => removeRecords(selectRecords(filter))),
    select: (filter) => Effect.sync(() => selectRecords(filter).map((r) => ({ ...r, inline: null }))),
    list: (options) =>
      Effect.sync(() => {
        let all = Array.from(rows.values())
        if (options.namespace !== undefined) all = all.filter((r) => r.namespace === options.namespace)
        all.sort(compareBy(options))
        const offset = options.offset ?? 0
        const end = options.limit === undefined ? undefined : offset + options.limit
        return all.slice(offset, end).map((r) => ({ ...r, inline: null }))
      }),
    touch: (key, expiresAt, now) =>
      Effect.sync(() => {
        const record = rows.get(key)
        if (record === undefined || (record.expiresAt !== null && record.expiresAt <= now)) return false
        writes++
        record.expiresAt = expiresAt
        record.accessedAt = Math.max(record.accessedAt, now)
        return true
      }),
    recordAccess: (key, now) =>
      Effect.sync(() => {
        if (key === null) {
          misses++
          return
        }
        hits++
        const record = rows.get(key)
        if (record !== undefined) {
          record.hits++
          record.accessedAt = Math.max(record.accessedAt, now)
        }
      }),
    evict: (bytes) =>
      Effect.sync(() => {
        const byAge = Array.from(rows.values()).sort(compareBy({ orderBy: "accessedAt" }))
        const victims: Array<EntryRecord> = []
        let freed = 0
        for (const record of byAge) {
          if (freed >= bytes) break
          victims.push(record)
          freed += record.storedBytes
        }
        return removeRecords(victims)
      }),
    totals: Effect.sync(() => ({ entries: rows.size, totalBytes, hits, misses })),
    clear: Effect.sync(() => removeRecords(Array.from(rows.values()))),
    flush: Effect.void,
    lookupFingerprints: (paths) =>
      Effect.sync(() => {
        const out: Array<PathFingerprint> = []
        for (const p of paths) {
          const found = fingerprints.get(p)
          if (found !== undefined) out.push(found)
        }
        return out
      }),
    saveFingerprints: (rows) =>
      Effect.sync(() => {
        for (const row of rows) fingerprints.set(row.path, { path: row.path, stat: row.stat, hash: row.hash })
      }),
    acquireLease: (key, holder, until, now) =>
      Effect.sync(() => {
        const current = leases.get(key)
        if (current !== undefined && current.until > now && current.holder !== holder) return false
        leases.set(key, { holder, until })
        return true
      }),
    releaseLease: (key, holder) =>
      Effect.sync(() => {
        if (leases.get(key)?.holder === holder) leases.delete(key)
      }),
    changeCount: () => writes
  })
})

/**
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<MetadataStore> = Layer.effect(MetadataStore, make)
