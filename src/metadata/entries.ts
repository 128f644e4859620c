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
 * The columns of a listing, in the order `entriesFromColumns` reads them (SQL column names; the
 * record field each one becomes is in `ENTRY_ROW_SLOTS`).
 */
export const ENTRY_ROW_COLUMNS = `key, namespace, description, format, codec, stored_bytes, raw_bytes, created_at,
  accessed_at, expires_at, hits, params, metadata, stale_until, tags`

/** Where each sortable field sits among a listing's columns. */
export const ENTRY_ROW_SLOTS = { key: 0, storedBytes: 5, createdAt: 7, accessedAt: 8, expiresAt: 9, hits: 10 } as const

/**
 * Where the params sit among a listing's columns. A store puts them there already parsed (`parseJson`
 * of each text, or what one parse of all the rows' texts gave): `entriesFromColumns` does not parse them.
 */
export const ENTRY_ROW_PARAMS = 11

/**
 * The public entries of a listing held column by column (one array per `ENTRY_ROW_COLUMNS`
 * column, params already parsed), in the order `order` gives (positions into the columns; `null`:
 * as they are). `toEntry` without the record between. Columns rather than one array per row:
 * parsed from one JSON array per column, a listing builds no 10,000 short-lived row arrays, which
 * every young-generation GC during it would copy (and their 13-digit times parse into unboxed
 * double arrays rather than a heap number each).
 */
export const entriesFromColumns = (
  columns: ReadonlyArray<ReadonlyArray<any>>,
  order: ReadonlyArray<number> | null
): Array<CacheEntry> => {
  const [key, namespace, description, format, codec, storedBytes, rawBytes, createdAt, accessedAt, expiresAt, hits] =
    columns
  const params = columns[ENTRY_ROW_PARAMS]
  const metadata = columns[12]
  const staleUntil = columns[13]
  const tags = columns[14]
  const count = key.length
  const entries = new Array<CacheEntry>(count)
  for (let j = 0; j < count; j++) {
    const i = order === null ? j : order[j]
    entries[j] = {
      key: key[i],
      namespace: namespace[i],
      description: description[i],
      format: format[i],
      codec: codec[i],
      storedBytes: storedBytes[i],
      rawBytes: rawBytes[i],
      createdAt: createdAt[i],
      accessedAt: accessedAt[i],
      expiresAt: expiresAt[i],
      hits: hits[i],
      params: params[i] as CacheEntry["params"],
      metadata: parseJson(metadata[i]) as CacheEntry["metadata"],
      staleUntil: staleUntil[i],
      tags: parseTags(tags[i])
    }
  }
  return entries
}
