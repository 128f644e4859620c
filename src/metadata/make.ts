/**
 * `MetadataStore.make`: a full service from the operations a store must write. Beside the contract
 * rather than in it because the derived `listEntries` needs the record-to-entry conversion of
 * `entries.ts`, and a service module imports no implementation.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { defined } from "../shared/defined.js"
import { NotSync } from "../shared/sync.js"
import { toEntry } from "./entries.js"
import { type EntryRecord, MetadataError, MetadataStore, type StoredValue } from "./service.js"

/** The members `make` can derive or default. */
type Derived =
  | "probe"
  | "unsafeProbe"
  | "unsafeUpsert"
  | "removeCounted"
  | "listEntries"
  | "unsafeRecordAccess"
  | "repairSize"
  | "recount"
  | "sql"
  | "changeCount"
  | "namespaceTotals"
  | "lookupMany"
  | "probeMany"
  | "upsertMany"
  | "unsafeUpsertMany"
  | "acquireLeaseIfAbsent"

/**
 * What an implementer writes: every operation but the derived and optional ones, which may be
 * given when the store does them better than the defaults.
 *
 * @since 0.1.0
 * @category models
 */
export type Impl =
  & Omit<MetadataStore.Service, Derived>
  & Partial<Pick<MetadataStore.Service, Derived>>

const notSync = (): NotSync => NotSync

/** What a read needs of a record (the `probe` of a `lookup`). */
const toStoredValue = Option.map((r: EntryRecord): StoredValue => ({
  key: r.key,
  storedBytes: r.storedBytes,
  checksum: r.checksum,
  blobId: r.blobId,
  inline: r.inline,
  expiresAt: r.expiresAt,
  staleUntil: r.staleUntil
}))

/**
 * A `MetadataStore.Service` from its primitive operations (as `KeyValueStore.make` does). Defaults:
 * `probe` is `lookup` narrowed to what a read needs, `removeCounted` counts what `remove` returns,
 * `listEntries` maps `list` through `toEntry`, `lookupMany` looks each key up, `probeMany` narrows
 * it, `upsertMany` upserts one at a time (not atomic: a store should write its own), `recount` is
 * `totals`, `repairSize` fails "Unsupported" (the cache removes the entry instead), `sql` is `null`,
 * `namespaceTotals` counts a listing of the namespace (a scan: stores keep counters instead),
 * `acquireLeaseIfAbsent` is `null` (a memoised miss reads again under the lease), and
 * the synchronous fast paths (`unsafeProbe`, `unsafeUpsert`, `unsafeUpsertMany`, `unsafeRecordAccess`,
 * `changeCount`) answer `NotSync`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Impl): MetadataStore.Service => {
  const lookupMany = impl.lookupMany ?? ((keys: ReadonlyArray<string>) => Effect.forEach(keys, impl.lookup))
  return MetadataStore.of({
    probe: (key) => Effect.map(impl.lookup(key), toStoredValue),
    lookupMany,
    probeMany: (keys) => Effect.map(lookupMany(keys), (found) => found.map(toStoredValue)),
    upsertMany: (items) =>
      Effect.reduce(
        items,
        { replacedBlobIds: [] as Array<string>, totalBytes: 0 },
        (acc, { record, rows }) =>
          Effect.map(impl.upsert(record, rows), (written) => {
            if (written.replacedBlobId !== null) acc.replacedBlobIds.push(written.replacedBlobId)
            acc.totalBytes = written.totalBytes
            return acc
          })
      ),
    unsafeProbe: notSync,
    unsafeUpsert: notSync,
    unsafeUpsertMany: notSync,
    removeCounted: (filter) =>
      Effect.map(impl.remove(filter), (refs) => ({
        removed: refs.length,
        blobIds: refs.flatMap((ref) => ref.blobId === null ? [] : [ref.blobId])
      })),
    listEntries: (options) => Effect.map(impl.list(options), (records) => records.map(toEntry)),
    unsafeRecordAccess: notSync,
    repairSize: () =>
      Effect.fail(
        new MetadataError({
          method: "MetadataStore.repairSize",
          reason: "Unsupported",
          description: `the ${impl.backend} metadata store cannot repair a recorded size`
        })
      ),
    recount: impl.totals,
    sql: null,
    acquireLeaseIfAbsent: null,
    changeCount: notSync,
    namespaceTotals: (namespace) =>
      Effect.map(impl.list({ namespace }), (records) => {
        let totalBytes = 0
        for (const r of records) totalBytes += r.storedBytes
        return { entries: records.length, totalBytes }
      }),
    ...defined(impl)
  })
}
