/**
 * The in-memory metadata store: a Map, no disk. A product feature for tests and ephemeral caches,
 * held to the same contract suite as the SQLite store.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type { CacheEntry } from "../schema/CacheEntry.js"
import { matchesConditions } from "./conditions.js"
import { toEntry } from "./entries.js"
import { make as makeMetadataStore } from "./make.js"
import type {
  EntryFilter,
  EntryRecord,
  ListOptions,
  NamespaceTotals,
  PathFingerprint,
  RemovedRef,
  TableDefinition,
  TableMatch,
  TableQuery,
  TableRow,
  Totals,
  UpsertItem,
  UpsertManyResult
} from "./service.js"
import { goneAt, MetadataError, MetadataStore } from "./service.js"

type Mutable<T> = { -readonly [K in keyof T]: T[K] }

/** Past its grace at `at`: what cleanup removes (an entry inside its grace is kept). */
const isGone = (record: EntryRecord, at: number): boolean => {
  const gone = goneAt(record)
  return gone !== null && gone <= at
}

const carriesAny = (record: EntryRecord, tags: ReadonlyArray<string> | undefined): boolean =>
  tags === undefined || (record.tags !== undefined && record.tags.some((tag) => tags.includes(tag)))

const matches = (record: EntryRecord, filter: EntryFilter, keySet: Set<string> | undefined): boolean =>
  (keySet === undefined || keySet.has(record.key)) &&
  carriesAny(record, filter.tags) &&
  (filter.namespace === undefined || record.namespace === filter.namespace) &&
  (filter.createdBefore === undefined || record.createdAt < filter.createdBefore) &&
  (filter.expiredAt === undefined || isGone(record, filter.expiredAt)) &&
  (filter.checksum === undefined || record.checksum === filter.checksum) &&
  (filter.blobId === undefined || record.blobId === filter.blobId)

const toRef = (record: EntryRecord): RemovedRef => ({
  key: record.key,
  blobId: record.blobId,
  storedBytes: record.storedBytes
})

/**
 * Compares two records by one field for listing. Ties compare equal: the sort is stable, so they
 * keep the order of the input, which is insertion order (the Map's).
 */
const compareBy = (field: NonNullable<ListOptions["orderBy"]>, descending: boolean) => {
  const sign = descending ? -1 : 1
  return (a: EntryRecord, b: EntryRecord): number => {
    const x = a[field] ?? Number.POSITIVE_INFINITY
    const y = b[field] ?? Number.POSITIVE_INFINITY
    return (x < y ? -1 : x > y ? 1 : 0) * sign
  }
}

/**
 * Custom metadata rows in memory: per table, the row of each entry. Shared by the memory and
 * JSON stores, which both keep their state as plain maps.
 *
 * @since 0.1.0
 * @category models
 */
export class TableRows {
  readonly byTable = new Map<string, Map<string, Readonly<Record<string, unknown>>>>()
  constructor(readonly definitions: ReadonlyMap<string, TableDefinition>) {
    for (const name of definitions.keys()) this.byTable.set(name, new Map())
  }
  /** Drops every row of an entry (removed or rewritten). */
  deleteKey(key: string): void {
    for (const rows of this.byTable.values()) rows.delete(key)
  }
  /** Checks rows against the tables before anything changes: unknown tables, unique columns. */
  check(key: string, rows: ReadonlyArray<TableRow>): MetadataError | undefined {
    for (const { row, table } of rows) {
      const def = this.definitions.get(table)
      if (def === undefined) {
        return new MetadataError({
          method: "MetadataStore.upsert",
          reason: "UnknownTable",
          description: `no custom metadata table ${table} is registered`
        })
      }
      for (const c of def.columns) {
        if (!c.nullable && (row[c.name] === null || row[c.name] === undefined)) {
          return new MetadataError({
            method: "MetadataStore.upsert",
            reason: "InvalidRow",
            description: `${table}.${c.name} may not be null`
          })
        }
      }
      for (const columns of def.unique) {
        for (const [other, existing] of this.byTable.get(table)!) {
          if (other !== key && columns.every((c) => existing[c] !== null && existing[c] === row[c])) {
            return new MetadataError({
              method: "MetadataStore.upsert",
              reason: "InvalidRow",
              description: `${table}: (${columns.join(", ")}) must be unique; entry ${other} has the same values`
            })
          }
        }
      }
    }
    return undefined
  }
  write(key: string, rows: ReadonlyArray<TableRow> | undefined): void {
    this.deleteKey(key)
    for (const { row, table } of rows ?? []) this.byTable.get(table)!.set(key, { ...row })
  }
  query(
    table: string,
    query: TableQuery,
    entry: (key: string) => EntryRecord | undefined
  ): ReadonlyArray<TableMatch> | MetadataError {
    const def = this.definitions.get(table)
    if (def === undefined) {
      return new MetadataError({
        method: "MetadataStore.queryTable",
        reason: "UnknownTable",
        description: `no custom metadata table ${table} is registered`
      })
    }
    const out: Array<TableMatch> = []
    for (const [key, row] of this.byTable.get(table)!) {
      const record = entry(key)
      if (record === undefined || (record.expiresAt !== null && record.expiresAt <= query.liveAt)) continue
      if (matchesConditions(row, query.where)) out.push({ record: { ...record, inline: null }, row: { ...row } })
    }
    const column = query.orderBy
    const sign = query.descending === true ? -1 : 1
    out.sort((a, b) => {
      const x: any = column === undefined ? a.record.createdAt : a.row[column]
      const y: any = column === undefined ? b.record.createdAt : b.row[column]
      const c = x < y ? -1 : x > y ? 1 : a.record.key < b.record.key ? -1 : a.record.key > b.record.key ? 1 : 0
      return c * sign
    })
    return query.limit === undefined ? out : out.slice(0, query.limit)
  }
}

/**
 * The whole state of a map-backed store, with synchronous operations: the memory store wraps it
 * in effects, the JSON store also loads it from and saves it to a file.
 *
 * @since 0.1.0
 * @category models
 */
export class MemoryState {
  readonly rows = new Map<string, Mutable<EntryRecord>>()
  /** Stat fingerprints of hashed paths, by path (see `PathFingerprint`). */
  readonly fingerprints = new Map<string, PathFingerprint>()
  readonly tables: TableRows
  /** Single-flight leases of memoised computations, by key. */
  readonly leases = new Map<string, { holder: string; until: number }>()
  hits = 0
  misses = 0
  totalBytes = 0
  /** Entries and stored bytes per namespace, kept with every change (`stats({ namespace })`). */
  readonly namespaces = new Map<string, { entries: number; bytes: number }>()
  /** Every change to entries counts here, so `changeCount` can tell a held value is still current. */
  writes = 0
  /** The tag index: tag → keys of the entries carrying it. */
  readonly tagIndex = new Map<string, Set<string>>()
  constructor(definitions: ReadonlyMap<string, TableDefinition>) {
    this.tables = new TableRows(definitions)
  }

  private indexTags(key: string, tags: ReadonlyArray<string> | undefined): void {
    for (const tag of tags ?? []) {
      let keys = this.tagIndex.get(tag)
      if (keys === undefined) this.tagIndex.set(tag, keys = new Set())
      keys.add(key)
    }
  }

  private unindexTags(key: string, tags: ReadonlyArray<string> | undefined): void {
    for (const tag of tags ?? []) {
      const keys = this.tagIndex.get(tag)
      if (keys === undefined) continue
      keys.delete(key)
      if (keys.size === 0) this.tagIndex.delete(tag)
    }
  }

  /** Keys carrying any of the tags, from the index. */
  private taggedKeys(tags: ReadonlyArray<string>): Set<string> {
    const keys = new Set<string>()
    for (const tag of tags) for (const key of this.tagIndex.get(tag) ?? []) keys.add(key)
    return keys
  }

  /** Adds a loaded record as is (hits and all). */
  load(record: EntryRecord): void {
    this.rows.set(record.key, { ...record })
    this.indexTags(record.key, record.tags)
    this.totalBytes += record.storedBytes
    this.count(record.namespace, 1, record.storedBytes)
  }

  private count(namespace: string, entries: number, bytes: number): void {
    const counted = this.namespaces.get(namespace)
    if (counted === undefined) {
      this.namespaces.set(namespace, { entries, bytes })
    } else {
      counted.entries += entries
      counted.bytes += bytes
      if (counted.entries <= 0) this.namespaces.delete(namespace)
    }
  }

  /** The counted entries and bytes of one namespace. */
  namespaceTotals(namespace: string): NamespaceTotals {
    const counted = this.namespaces.get(namespace)
    return counted === undefined
      ? { entries: 0, totalBytes: 0 }
      : { entries: counted.entries, totalBytes: counted.bytes }
  }

  private removeRecords(records: Iterable<EntryRecord>): ReadonlyArray<RemovedRef> {
    this.writes++
    const removed: Array<RemovedRef> = []
    for (const record of records) {
      this.rows.delete(record.key)
      this.unindexTags(record.key, record.tags)
      this.tables.deleteKey(record.key)
      this.totalBytes -= record.storedBytes
      this.count(record.namespace, -1, -record.storedBytes)
      removed.push(toRef(record))
    }
    return removed
  }

  private selectRecords(filter: EntryFilter): Array<EntryRecord> {
    const keySet = filter.keys !== undefined
      ? new Set(filter.keys)
      : filter.tags !== undefined
      ? this.taggedKeys(filter.tags)
      : undefined
    const source: Iterable<EntryRecord> = keySet === undefined
      ? this.rows.values()
      : Array.from(keySet, (k) => this.rows.get(k)).filter((r): r is Mutable<EntryRecord> => r !== undefined)
    const out: Array<EntryRecord> = []
    for (const record of source) {
      if (filter.limit !== undefined && out.length >= filter.limit) break
      if (matches(record, filter, keySet)) out.push(record)
    }
    return out
  }

  // Inline bytes are copied in and out: callers may hold views into pooled or user-owned memory.
  lookup(key: string): Option.Option<EntryRecord> {
    const record = this.rows.get(key)
    return record === undefined
      ? Option.none()
      : Option.some(record.inline === null ? { ...record } : { ...record, inline: Uint8Array.from(record.inline) })
  }

  upsert(record: EntryRecord, tableRows: ReadonlyArray<TableRow> | undefined): UpsertResult | MetadataError {
    const problem = tableRows === undefined ? undefined : this.tables.check(record.key, tableRows)
    if (problem !== undefined) return problem
    this.writes++
    this.tables.write(record.key, tableRows)
    const previous = this.rows.get(record.key)
    if (previous !== undefined) {
      this.totalBytes -= previous.storedBytes
      this.count(previous.namespace, -1, -previous.storedBytes)
      this.unindexTags(record.key, previous.tags)
    }
    this.count(record.namespace, 1, record.storedBytes)
    const tags = record.tags === undefined || record.tags.length === 0 ? undefined : Array.from(record.tags)
    // Map.set keeps an existing key's place: an overwrite keeps its insertion position.
    this.rows.set(record.key, {
      ...record,
      inline: record.inline === null ? null : Uint8Array.from(record.inline),
      staleUntil: goneAt(record),
      hits: 0,
      tags
    })
    this.indexTags(record.key, tags)
    this.totalBytes += record.storedBytes
    const replaced = previous?.blobId ?? null
    return { replacedBlobId: replaced === record.blobId ? null : replaced, totalBytes: this.totalBytes }
  }

  /**
   * Many upserts, all or none: each entry's previous state is kept until every one succeeded, and
   * put back (last first) when one fails.
   */
  upsertMany(items: ReadonlyArray<UpsertItem>): UpsertManyResult | MetadataError {
    const undo: Array<{
      readonly key: string
      readonly record: Mutable<EntryRecord> | undefined
      readonly rows: ReadonlyArray<TableRow>
    }> = []
    const replacedBlobIds: Array<string> = []
    for (const { record, rows } of items) {
      const saved: Array<TableRow> = []
      for (const [table, byKey] of this.tables.byTable) {
        const row = byKey.get(record.key)
        if (row !== undefined) saved.push({ table, row })
      }
      undo.push({ key: record.key, record: this.rows.get(record.key), rows: saved })
      const result = this.upsert(record, rows)
      if (result instanceof MetadataError) {
        for (let i = undo.length - 1; i >= 0; i--) this.restore(undo[i].key, undo[i].record, undo[i].rows)
        return result
      }
      if (result.replacedBlobId !== null) replacedBlobIds.push(result.replacedBlobId)
    }
    return { replacedBlobIds, totalBytes: this.totalBytes }
  }

  /** Puts an entry back as it was before an upsert (absent when `record` is undefined). */
  private restore(key: string, record: Mutable<EntryRecord> | undefined, rows: ReadonlyArray<TableRow>): void {
    const current = this.rows.get(key)
    if (current !== undefined) {
      this.totalBytes -= current.storedBytes
      this.unindexTags(key, current.tags)
      this.rows.delete(key)
    }
    if (record !== undefined) {
      this.rows.set(key, record)
      this.indexTags(key, record.tags)
      this.totalBytes += record.storedBytes
    }
    this.tables.write(key, rows)
  }

  remove(filter: EntryFilter): ReadonlyArray<RemovedRef> {
    return this.removeRecords(this.selectRecords(filter))
  }

  select(filter: EntryFilter): ReadonlyArray<EntryRecord> {
    return this.selectRecords(filter).map((r) => ({ ...r, inline: null }))
  }

  list(options: ListOptions): ReadonlyArray<EntryRecord> {
    return this.listed(options).map((r) => ({ ...r, inline: null }))
  }

  /** `list` as public entries, built from the held records without copying each first. */
  listEntries(options: ListOptions): ReadonlyArray<CacheEntry> {
    return this.listed(options).map(toEntry)
  }

  private listed(options: ListOptions): Array<EntryRecord> {
    let all: Array<EntryRecord> = options.tag === undefined
      ? Array.from(this.rows.values())
      : Array.from(this.tagIndex.get(options.tag) ?? [], (key) => this.rows.get(key)!)
    if (options.namespace !== undefined) all = all.filter((r) => r.namespace === options.namespace)
    const descending = options.descending === true
    // Insertion order (the Map's), reversed when descending; a stable sort keeps it among ties.
    if (descending) all.reverse()
    if (options.orderBy !== undefined) all.sort(compareBy(options.orderBy, descending))
    const offset = options.offset ?? 0
    if (offset === 0 && options.limit === undefined) return all
    return all.slice(offset, options.limit === undefined ? undefined : offset + options.limit)
  }

  touch(
    key: string,
    expiresAt: number | null,
    now: number,
    resign?: { readonly from: string; readonly to: string }
  ): boolean {
    const record = this.rows.get(key)
    if (record === undefined || (record.expiresAt !== null && record.expiresAt <= now)) return false
    if (resign !== undefined && record.checksum !== resign.from) return false
    this.writes++
    // The entry keeps its grace: `staleUntil` moves with the expiry.
    const grace = record.expiresAt === null ? 0 : Math.max(0, (goneAt(record) ?? record.expiresAt) - record.expiresAt)
    record.expiresAt = expiresAt
    record.staleUntil = expiresAt === null ? null : expiresAt + grace
    if (resign !== undefined) record.checksum = resign.to
    record.accessedAt = Math.max(record.accessedAt, now)
    return true
  }

  access(key: string | null, now: number, count = 1): void {
    if (key === null) {
      this.misses += count
      return
    }
    this.hits += count
    const record = this.rows.get(key)
    if (record !== undefined) {
      record.hits += count
      record.accessedAt = Math.max(record.accessedAt, now)
    }
  }

  evict(bytes: number): ReadonlyArray<RemovedRef> {
    const byAge = Array.from(this.rows.values()).sort(compareBy("accessedAt", false))
    const victims: Array<EntryRecord> = []
    let freed = 0
    for (const record of byAge) {
      if (freed >= bytes) break
      victims.push(record)
      freed += record.storedBytes
    }
    return this.removeRecords(victims)
  }

  totals(): Totals {
    return { entries: this.rows.size, totalBytes: this.totalBytes, hits: this.hits, misses: this.misses }
  }

  /** Sets the size of the version examined (same blob id and checksum); `false` when it changed. */
  repairSize(key: string, blobId: string | null, checksum: string, storedBytes: number): boolean {
    const record = this.rows.get(key)
    if (record === undefined || record.blobId !== blobId || record.checksum !== checksum) return false
    this.writes++
    this.totalBytes += storedBytes - record.storedBytes
    this.count(record.namespace, 0, storedBytes - record.storedBytes)
    record.storedBytes = storedBytes
    return true
  }

  /** The byte counter recomputed from the rows. */
  recount(): Totals {
    let bytes = 0
    this.namespaces.clear()
    for (const record of this.rows.values()) {
      bytes += record.storedBytes
      this.count(record.namespace, 1, record.storedBytes)
    }
    this.totalBytes = bytes
    return this.totals()
  }

  clear(): ReadonlyArray<RemovedRef> {
    return this.removeRecords(Array.from(this.rows.values()))
  }

  /** Takes the lease when it is free, expired, or already this holder's. */
  acquireLease(key: string, holder: string, until: number, now: number): boolean {
    const current = this.leases.get(key)
    if (current !== undefined && current.until > now && current.holder !== holder) return false
    this.leases.set(key, { holder, until })
    return true
  }

  /** `acquireLease`, refused while an entry live at `liveAt` is stored under `key`. */
  acquireLeaseIfAbsent(key: string, holder: string, until: number, now: number, liveAt: number): boolean {
    const stored = this.rows.get(key)
    if (stored !== undefined && (stored.expiresAt === null || stored.expiresAt > liveAt)) return false
    return this.acquireLease(key, holder, until, now)
  }

  releaseLease(key: string, holder: string): void {
    if (this.leases.get(key)?.holder === holder) this.leases.delete(key)
  }

  lookupFingerprints(paths: ReadonlyArray<string>): ReadonlyArray<PathFingerprint> {
    const out: Array<PathFingerprint> = []
    for (const p of paths) {
      const found = this.fingerprints.get(p)
      if (found !== undefined) out.push(found)
    }
    return out
  }

  saveFingerprints(rows: ReadonlyArray<PathFingerprint>): void {
    for (const row of rows) this.fingerprints.set(row.path, { path: row.path, stat: row.stat, hash: row.hash })
  }

  fingerprintPaths(after: string | null, limit: number): ReadonlyArray<string> {
    const paths: Array<string> = []
    for (const path of this.fingerprints.keys()) if (after === null || path > after) paths.push(path)
    return paths.sort().slice(0, limit)
  }

  deleteFingerprints(paths: ReadonlyArray<string>): number {
    let removed = 0
    for (const path of paths) if (this.fingerprints.delete(path)) removed++
    return removed
  }

  query(table: string, query: TableQuery): ReadonlyArray<TableMatch> | MetadataError {
    return this.tables.query(table, query, (key) => this.rows.get(key))
  }
}

/**
 * @since 0.1.0
 * @category models
 */
export interface UpsertResult {
  readonly replacedBlobId: string | null
  readonly totalBytes: number
}

const orFail = <A>(result: A | MetadataError): Effect.Effect<A, MetadataError> =>
  result instanceof MetadataError ? Effect.fail(result) : Effect.succeed(result)

/**
 * @since 0.1.0
 * @category constructors
 */
export const make = (
  options?: { readonly tables?: ReadonlyArray<TableDefinition> | undefined }
): Effect.Effect<MetadataStore["Type"]> =>
  Effect.sync(() => {
    const state = new MemoryState(new Map((options?.tables ?? []).map((def) => [def.name, def])))
    return makeMetadataStore({
      backend: "memory",
      lookup: (key) => Effect.sync(() => state.lookup(key)),
      probe: (key) => Effect.sync(() => state.lookup(key)),
      unsafeProbe: (key) => Option.getOrNull(state.lookup(key)),
      upsert: (record, tableRows) => Effect.suspend(() => orFail(state.upsert(record, tableRows))),
      lookupMany: (keys) => Effect.sync(() => keys.map((key) => state.lookup(key))),
      upsertMany: (items) => Effect.suspend(() => orFail(state.upsertMany(items))),
      remove: (filter) => Effect.sync(() => state.remove(filter)),
      select: (filter) => Effect.sync(() => state.select(filter)),
      list: (listOptions) => Effect.sync(() => state.list(listOptions)),
      listEntries: (listOptions) => Effect.sync(() => state.listEntries(listOptions)),
      touch: (key, expiresAt, now, resign) => Effect.sync(() => state.touch(key, expiresAt, now, resign)),
      recordAccess: (key, now) => Effect.sync(() => state.access(key, now)),
      unsafeRecordAccess: (key, now) => state.access(key, now),
      evict: (bytes) => Effect.sync(() => state.evict(bytes)),
      totals: Effect.sync(() => state.totals()),
      namespaceTotals: (namespace) => Effect.sync(() => state.namespaceTotals(namespace)),
      repairSize: (key, blobId, checksum, storedBytes) =>
        Effect.sync(() => state.repairSize(key, blobId, checksum, storedBytes)),
      recount: Effect.sync(() => state.recount()),
      clear: Effect.sync(() => state.clear()),
      flush: Effect.void,
      queryTable: (table, query) => Effect.suspend(() => orFail(state.query(table, query))),
      sql: null,
      lookupFingerprints: (paths) => Effect.sync(() => state.lookupFingerprints(paths)),
      saveFingerprints: (rows) => Effect.sync(() => state.saveFingerprints(rows)),
      fingerprintPaths: (after, limit) => Effect.sync(() => state.fingerprintPaths(after, limit)),
      deleteFingerprints: (paths) => Effect.sync(() => state.deleteFingerprints(paths)),
      acquireLease: (key, holder, until, now) => Effect.sync(() => state.acquireLease(key, holder, until, now)),
      acquireLeaseIfAbsent: (key, holder, until, now, liveAt) =>
        Effect.sync(() => state.acquireLeaseIfAbsent(key, holder, until, now, liveAt)),
      releaseLease: (key, holder) => Effect.sync(() => state.releaseLease(key, holder)),
      changeCount: () => state.writes
    })
  })

/**
 * @since 0.1.0
 * @category layers
 */
export const layerWith = (
  options: { readonly tables?: ReadonlyArray<TableDefinition> | undefined }
): Layer.Layer<MetadataStore> => Layer.effect(MetadataStore, make(options))

/**
 * A fresh, empty store without custom tables.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<MetadataStore> = layerWith({})
