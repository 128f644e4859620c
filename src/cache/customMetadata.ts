/**
 * The cache's side of custom metadata tables: splitting `put`'s `metadata` option into table rows
 * and free-form JSON, and answering `queryMetadata`.
 */
import * as Effect from "effect/Effect"
import type { EntryRecord, MetadataStore, TableRow } from "../metadata/service.js"
import { MetadataError } from "../metadata/service.js"
import type { CacheEntry } from "../schema/CacheEntry.js"
import {
  decodeRow,
  encodeFilter,
  encodeRow,
  type MetadataFilter,
  type MetadataTable,
  type QueryMetadataOptions
} from "../schema/MetadataTable.js"
import { ConfigError } from "./service.js"

/**
 * The rule: a key of `metadata` naming a registered table is a row of that table (validated,
 * encoded); the other keys are free-form JSON kept in the entry's `metadata` (`null` when none).
 * Everything is checked before anything is written.
 */
export const attachMetadata = (
  tables: ReadonlyMap<string, MetadataTable>,
  metadata: Record<string, unknown>
): Effect.Effect<
  { readonly json: string | null; readonly rows: ReadonlyArray<TableRow> | undefined },
  ConfigError | MetadataError
> =>
  Effect.gen(function*() {
    let free: Record<string, unknown> | undefined
    let rows: Array<TableRow> | undefined
    for (const name of Object.keys(metadata)) {
      const table = tables.get(name)
      if (table === undefined) {
        ;(free ??= {})[name] = metadata[name]
        continue
      }
      ;(rows ??= []).push({ table: name, row: yield* encodeRow(table, metadata[name]) })
    }
    const json = free === undefined && rows !== undefined ? null : yield* Effect.try({
      try: () => JSON.stringify(free ?? {}),
      catch: (cause) =>
        new ConfigError({ reason: "Invalid", field: "put.metadata", description: "must be JSON-serialisable", cause })
    })
    return { json, rows }
  })

export const queryMetadata = <A, I>(
  store: MetadataStore.Service,
  tables: ReadonlyMap<string, MetadataTable>,
  table: MetadataTable<A, I>,
  filter: MetadataFilter<A> | undefined,
  options: Omit<QueryMetadataOptions<A>, "where"> | undefined,
  now: number,
  toEntry: (record: EntryRecord) => CacheEntry
): Effect.Effect<ReadonlyArray<{ readonly entry: CacheEntry; readonly row: A }>, MetadataError> =>
  Effect.gen(function*() {
    if (tables.get(table.name) === undefined) {
      return yield* new MetadataError({
        method: "Cache.queryMetadata",
        reason: "UnknownTable",
        description:
          `custom metadata table ${table.name} is not registered; pass it in Cache.layer({ metadataTables: [...] })`
      })
    }
    const where = yield* encodeFilter(table, filter)
    const matches = yield* store.queryTable(table.name, {
      where,
      orderBy: options?.orderBy,
      descending: options?.descending,
      limit: options?.limit,
      liveAt: now
    })
    return yield* Effect.forEach(
      matches,
      (match) => Effect.map(decodeRow(table, match.row), (row) => ({ entry: toEntry(match.record), row }))
    )
  })
