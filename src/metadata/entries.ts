/**
 * From what a metadata store keeps to the public `CacheEntry`: times stay epoch milliseconds, the
 * JSON text of params and metadata is parsed. Two spellings of one mapping — from a record, and
 * from the column values of a listing — kept side by side so they stay the same (a test checks
 * that a store's `listEntries` equals `list` mapped through `toEntry`).
 */
import type { CacheEntry } from "../schema/CacheEntry.js"
import { type EntryRecord, goneAt } from "./service.js"

/**
 * JSON text of a row's params or metadata; `null` when absent or unreadable (a damaged database
 * can hold anything there, and a listing must not die on one bad row).
 */
export const parseJson = (text: string | null): unknown => {
  if (text === null) return null
  try {
    return JSON.parse(text)
  } catch {
    return null
  }
}

/** The JSON text of a row's tags; `[]` when absent or unreadable. */
export const parseTags = (text: string | null): ReadonlyArray<string> => {
  const tags = parseJson(text)
  return Array.isArray(tags) ? tags.filter((t): t is string => typeof t === "string") : []
}

/** Tags as a SQL store keeps them beside the row: JSON text, `null` when there are none. */
export const tagsJson = (tags: ReadonlyArray<string> | undefined): string | null =>
  tags === undefined || tags.length === 0 ? null : JSON.stringify(tags)

/** The public entry of a stored record. */
export const toEntry = (record: EntryRecord): CacheEntry => ({
  key: record.key,
  namespace: record.namespace,
  description: record.description,
  format: record.format,
  codec: record.codec,
  storedBytes: record.storedBytes,
  rawBytes: record.rawBytes,
  createdAt: record.createdAt,
  accessedAt: record.accessedAt,
  expiresAt: record.expiresAt,
  staleUntil: goneAt(record),
  hits: record.hits,
  params: parseJson(record.params) as CacheEntry["params"],
  metadata: parseJson(record.metadata) as CacheEntry["metadata"],
  tags: record.tags ?? []
})

/**
 * The values a store's upsert binds, in its column order: key, namespace, description, format,
 * codec, stored_bytes, raw_bytes, checksum, blob_id, inline_value, created_at, accessed_at,
 * expires_at, params, metadata, stale_until, tags (`hits` starts at 0 in the statement). `inline`
 * is the record's inline bytes and `tags` its tags as the driver wants them.
 */
export const upsertValues = (record: EntryRecord, inline: unknown, tags: unknown): Array<unknown> => [
  record.key,
  record.namespace,
  record.description,
  record.format,
  record.codec,
  record.storedBytes,
  record.rawBytes,
  record.checksum,
  record.blobId,
  inline,
  record.createdAt,
  record.accessedAt,
  record.expiresAt,
  record.params,
  record.metadata,
  goneAt(record),
  tags
]

/**
 * The columns of a listing as SQL reads them, raw (SQL column names, in `toEntry`'s field order
 * but for `staleUntil`); `entriesFromColumns` reads them regrouped as `LISTING_COLUMNS`.
 */
export const ENTRY_ROW_COLUMNS = `key, namespace, description, format, codec, stored_bytes, raw_bytes, created_at,
  accessed_at, expires_at, hits, params, metadata, stale_until, tags`

/**
 * The columns `entriesFromColumns` reads, one array each: seven held one value per row, the params
 * (already parsed: `parseJson` of each text, or what one parse of all the rows' texts gave), and
 * `rest`, the seven fields that most rows of a cache share (see `ListingDefaults`). A store puts the
 * rowid last, where `entriesFromColumns` does not look.
 */
export const LISTING_COLUMNS = {
  key: 0,
  storedBytes: 1,
  rawBytes: 2,
  createdAt: 3,
  accessedAt: 4,
  expiresAt: 5,
  hits: 6,
  params: 7,
  rest: 8
} as const

/**
 * What a `rest` value of `0` stands for: the namespace, description, format, codec and the texts of
 * metadata and tags of one row of the listing (which, a store's choice), and a `staleUntil` equal to
 * the row's own `expiresAt`. Any other `rest` value is the row's own
 * `[namespace, description, format, codec, metadata, staleUntil, tags]`, metadata and tags as
 * stored (text, or whatever a damaged row holds). One small column instead of seven: most rows of a
 * cache share those values, and each column of a listing is a JSON array of 10,000 values for SQLite
 * to write and `JSON.parse` to read, and a 10,000-slot array for the collector to copy.
 */
export interface ListingDefaults {
  readonly namespace: string | null
  readonly description: string | null
  readonly format: string | null
  readonly codec: string | null
  readonly metadata: string | null
  readonly tags: string | null
}

/**
 * The public entries of a listing held column by column (`LISTING_COLUMNS`), in the order `order`
 * gives (positions into the columns; `null`: as they are). `toEntry` without the record between.
 * Columns rather than one array per row: parsed from one JSON array per column, a listing builds no
 * 10,000 short-lived row arrays, which every young-generation GC during it would copy (and their
 * 13-digit times parse into unboxed double arrays rather than a heap number each). Metadata and tags
 * are parsed for each entry, shared defaults included: each entry owns its objects.
 */
export const entriesFromColumns = (
  columns: ReadonlyArray<ReadonlyArray<any> | null>,
  defaults: ListingDefaults,
  order: ReadonlyArray<number> | null
): Array<CacheEntry> => {
  const [key, , , , , expiresAt, , , rest] = columns as ReadonlyArray<ReadonlyArray<any>>
  if (rest === null) return entriesFromOwnColumns(columns as ReadonlyArray<ReadonlyArray<any>>, order)
  // The defaults are one listed row's own values, so they are what its entry would hold.
  const { codec, description, format, metadata, namespace, tags } = defaults as ListingDefaults & {
    readonly namespace: CacheEntry["namespace"]
    readonly format: CacheEntry["format"]
    readonly codec: CacheEntry["codec"]
  }
  const count = key.length
  const entries = new Array<CacheEntry>(count)
  for (let j = 0; j < count; j++) {
    const i = order === null ? j : order[j]
    const own = rest[i]
    entries[j] = own === 0
      ? entryAt(columns, i, namespace, description, format, codec, metadata, expiresAt[i], tags)
      : entryAt(columns, i, own[0], own[1], own[2], own[3], own[4], own[5], own[6])
  }
  return entries
}

/**
 * The entry at position `i` of a listing's columns, given the seven fields a `rest` value stands
 * for (metadata and tags as stored; each entry parses its own). Both ways of listing build their
 * entries here, so every entry has the same fields in the same order.
 */
const entryAt = (
  columns: ReadonlyArray<ReadonlyArray<any> | null>,
  i: number,
  namespace: CacheEntry["namespace"],
  description: CacheEntry["description"],
  format: CacheEntry["format"],
  codec: CacheEntry["codec"],
  metadata: string | null,
  staleUntil: CacheEntry["staleUntil"],
  tags: string | null
): CacheEntry => ({
  key: columns[LISTING_COLUMNS.key]![i],
  namespace,
  description,
  format,
  codec,
  storedBytes: columns[LISTING_COLUMNS.storedBytes]![i],
  rawBytes: columns[LISTING_COLUMNS.rawBytes]![i],
  createdAt: columns[LISTING_COLUMNS.createdAt]![i],
  accessedAt: columns[LISTING_COLUMNS.accessedAt]![i],
  expiresAt: columns[LISTING_COLUMNS.expiresAt]![i],
  hits: columns[LISTING_COLUMNS.hits]![i],
  params: columns[LISTING_COLUMNS.params]![i] as CacheEntry["params"],
  metadata: parseJson(metadata) as CacheEntry["metadata"],
  staleUntil,
  tags: parseTags(tags)
})

/**
 * Where a listing without a `rest` column (`null` in its place) holds the seven fields `rest` would:
 * namespace, description, format, codec, metadata, staleUntil and tags, one column each, after the
 * rowid. A store lists this way when most rows of a cache do not share those values.
 */
export const LISTING_OWN = LISTING_COLUMNS.rest + 2

/** `entriesFromColumns` of a listing whose seven `rest` fields are columns of their own (`LISTING_OWN`). */
const entriesFromOwnColumns = (
  columns: ReadonlyArray<ReadonlyArray<any>>,
  order: ReadonlyArray<number> | null
): Array<CacheEntry> => {
  const key = columns[LISTING_COLUMNS.key]
  const namespace = columns[LISTING_OWN]
  const description = columns[LISTING_OWN + 1]
  const format = columns[LISTING_OWN + 2]
  const codec = columns[LISTING_OWN + 3]
  const metadata = columns[LISTING_OWN + 4]
  const staleUntil = columns[LISTING_OWN + 5]
  const tags = columns[LISTING_OWN + 6]
  const count = key.length
  const entries = new Array<CacheEntry>(count)
  for (let j = 0; j < count; j++) {
    const i = order === null ? j : order[j]
    entries[j] = entryAt(
      columns,
      i,
      namespace[i],
      description[i],
      format[i],
      codec[i],
      metadata[i],
      staleUntil[i],
      tags[i]
    )
  }
  return entries
}
