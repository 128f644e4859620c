/**
 * `cacheness stats`: what the cache holds, how big it is, how well it hits.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type { CacheEntry } from "../../schema/CacheEntry.js"
import { fields, formatAge, formatBytes, formatCount, formatPercent, table } from "../format.js"
import { dir, json, printJson, withCache } from "../shared.js"

interface Group {
  readonly name: string
  readonly entries: number
  readonly bytes: number
}

const groupBy = (entries: ReadonlyArray<CacheEntry>, name: (e: CacheEntry) => string): Array<Group> => {
  const groups = new Map<string, { entries: number; bytes: number }>()
  for (const e of entries) {
    const g = groups.get(name(e)) ?? { entries: 0, bytes: 0 }
    g.entries++
    g.bytes += e.storedBytes
    groups.set(name(e), g)
  }
  return Array.from(groups, ([name, g]) => ({ name, ...g })).sort((a, b) =>
    b.bytes - a.bytes || a.name.localeCompare(b.name)
  )
}

/**
 * @since 0.1.0
 * @category commands
 */
export const stats = Command.make(
  "stats",
  { dir, json },
  ({ dir, json }) =>
    withCache(dir, (cache) =>
      Effect.gen(function*() {
        const now = yield* Clock.currentTimeMillis
        const s = yield* cache.stats()
        const entries = yield* cache.list()
        const expired = entries.filter((e) => e.expiresAt !== null && e.expiresAt <= now).length
        const byNamespace = groupBy(entries, (e) => e.namespace)
        const byFormat = groupBy(entries, (e) => e.format)
        // A loop, not Math.min(...times): spreading a large cache's entries overflows the call stack.
        let first = Infinity
        let last = -Infinity
        for (const e of entries) {
          if (e.createdAt < first) first = e.createdAt
          if (e.createdAt > last) last = e.createdAt
        }
        const oldest = entries.length === 0 ? null : new Date(first)
        const newest = entries.length === 0 ? null : new Date(last)
        const rawBytes = entries.reduce((n, e) => n + e.rawBytes, 0)
        if (json) return yield* printJson({ ...s, expired, rawBytes, oldest, newest, byNamespace, byFormat })
        const groups = (title: string, gs: ReadonlyArray<Group>) =>
          table(
            [{ header: title }, { header: "ENTRIES", align: "right" }, { header: "SIZE", align: "right" }],
            gs.map((g) => [g.name === "" ? "(none)" : g.name, formatCount(g.entries), formatBytes(g.bytes)])
          )
        yield* Console.log(fields([
          ["directory", s.directory ?? "(memory)"],
          ["backend", s.backend],
          [
            "entries",
            `${formatCount(s.entries)}${
              expired > 0 ? ` (${formatCount(expired)} expired: run \`cacheness cleanup\`)` : ""
            }`
          ],
          [
            "size",
            `${formatBytes(s.totalBytes)}${
              s.maxSize === null
                ? " (no limit)"
                : ` of ${formatBytes(s.maxSize)} (${formatPercent(s.totalBytes / s.maxSize)})`
            }` +
            (rawBytes > 0 ? `, ${formatBytes(rawBytes)} before compression` : "")
          ],
          ["hits", formatCount(s.hits)],
          ["misses", formatCount(s.misses)],
          ["hit rate", s.hits + s.misses === 0 ? "-" : formatPercent(s.hitRate)],
          ["oldest", entries.length === 0 ? "-" : formatAge(first, now)],
          ["newest", entries.length === 0 ? "-" : formatAge(last, now)]
        ]))
        if (entries.length > 0) {
          yield* Console.log(`\n${groups("NAMESPACE", byNamespace)}\n\n${groups("FORMAT", byFormat)}`)
        }
      }), { readOnly: true })
).pipe(Command.withDescription("Show entries, size, hit rate and a breakdown by namespace and format."))
