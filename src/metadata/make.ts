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
import { MetadataError, MetadataStore } from "./service.js"

/** The members `make` can derive or default. */
type Derived =
  | "probe"
  | "unsafeProbe"
  | "removeCounted"
  | "listEntries"
  | "unsafeRecordAccess"
  | "repairSize"
  | "recount"
  | "sql"
  | "changeCount"
  | "namespaceTotals"

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

/**
 * A `MetadataStore.Service` from its primitive operations (as `KeyValueStore.make` does). Defaults:
 * `probe` is `lookup` narrowed to what a read needs, `removeCounted` counts what `remove` returns,
 * `listEntries` maps `list` through `toEntry`, `recount` is `totals`, `repairSize` fails
 * "Unsupported" (the cache removes the entry instead), `sql` is `null`, `namespaceTotals` counts a
 * listing of the namespace (a scan: stores keep counters instead), and the synchronous fast
 * paths (`unsafeProbe`, `unsafeRecordAccess`, `changeCount`) answer `NotSync`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (impl: Impl): MetadataStore.Service =>
  MetadataStore.of({
    probe: (key) =>
      Effect.map(
        impl.lookup(key),
        Option.map((r) => ({
          key: r.key,
          storedBytes: r.storedBytes,
          checksum: r.checksum,
          blobId: r.blobId,
          inline: r.inline,
          expiresAt: r.expiresAt
        }))
      ),
    unsafeProbe: notSync,
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
    changeCount: notSync,
    namespaceTotals: (namespace) =>
      Effect.map(impl.list({ namespace }), (records) => {
        let totalBytes = 0
        for (const r of records) totalBytes += r.storedBytes
        return { entries: records.length, totalBytes }
      }),
    ...defined(impl)
  })
