/**
 * `cacheness list`: entries with sizes, ages, expiry and hits; filtered, sorted, as a table or JSON.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { freshnessAt } from "../../cache/read.js"
import { describedContains } from "../../key/describeParams.js"
import type { EntryOrder } from "../../metadata/service.js"
import type { CacheEntry } from "../../schema/CacheEntry.js"
import { usage } from "../exit.js"
import { formatAge, formatBytes, formatCount, formatExpiry, formatParams, table, truncate } from "../format.js"
import { dir, json, printJson, withCache } from "../shared.js"

/** CLI sort names → store order, and whether the natural reading is largest/newest first. */
const SORTS: Record<string, readonly [EntryOrder, boolean]> = {
  created: ["createdAt", true],
  accessed: ["accessedAt", true],
  expires: ["expiresAt", false],
  size: ["storedBytes", true],
  hits: ["hits", true],
  key: ["key", false]
}

const namespace = Options.text("namespace").pipe(
  Options.withAlias("n"),
  Options.withPseudoName("NAMESPACE"),
  Options.withDescription("Only entries in this namespace."),
  Options.optional
)
const param = Options.text("param").pipe(
  Options.withAlias("p"),
  Options.withPseudoName("NAME=VALUE"),
  Options.withDescription(
    "Only entries whose key has this parameter, as NAME=VALUE (VALUE is JSON, else a string). Repeatable."
  ),
  Options.repeated
)
const expired = Options.boolean("expired").pipe(Options.withDescription("Only expired entries (not yet cleaned up)."))
const sort = Options.choice("sort", Object.keys(SORTS) as ["created", "accessed", "expires", "size", "hits", "key"])
  .pipe(
    Options.withDescription("Sort order: newest, largest, most hit first; soonest expiry and keys ascending."),
    Options.withDefault("created" as const)
  )
const reverse = Options.boolean("reverse").pipe(
  Options.withAlias("r"),
  Options.withDescription("Reverse the sort order.")
)
const limit = Options.integer("limit").pipe(
  Options.withAlias("l"),
  Options.withPseudoName("N"),
  Options.withDescription("Show at most this many entries."),
  Options.optional
)

const parseParam = (text: string) => {
  const eq = text.indexOf("=")
  if (eq <= 0) return Effect.fail(usage(`--param ${text}: expected NAME=VALUE`))
  const raw = text.slice(eq + 1)
  let value: unknown = raw
  try {
    value = JSON.parse(raw)
  } catch {
    // not JSON: the value is the string itself
  }
  return Effect.succeed([text.slice(0, eq), value] as const)
}

const columns = [
  { header: "KEY" },
  { header: "NAMESPACE" },
  { header: "FORMAT" },
  { header: "SIZE", align: "right" },
  { header: "HITS", align: "right" },
  { header: "CREATED", align: "right" },
  { header: "ACCESSED", align: "right" },
  { header: "EXPIRES" },
  { header: "STATE" },
  { header: "DESCRIPTION" }
] as const

/**
 * Fresh (served), stale (past its TTL, inside its grace: served only to `allowStale` and the stale
 * options of `cached`), or expired (waiting for cleanup).
 */
const stateOf = (e: CacheEntry, now: number): string => {
  const state = freshnessAt(e.expiresAt, e.staleUntil, now)
  return state === "fresh" ? "fresh" : state === "stale" ? `stale (gone ${formatExpiry(e.staleUntil, now)})` : "expired"
}

const row = (e: CacheEntry, now: number) => [
  e.key,
  e.namespace,
  e.format,
  formatBytes(e.storedBytes),
  formatCount(e.hits),
  formatAge(e.createdAt, now),
  formatAge(e.accessedAt, now),
  formatExpiry(e.expiresAt, now),
  stateOf(e, now),
  truncate(e.description ?? formatParams(e.params), 60)
]

/**
 * @since 0.1.0
 * @category commands
 */
export const list = Command.make(
  "list",
  { dir, json, namespace, param, expired, sort, reverse, limit },
  (o) =>
    withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        if (Option.isSome(o.limit) && o.limit.value < 0) return yield* usage("--limit must not be negative")
        const wanted = Object.fromEntries(yield* Effect.forEach(o.param, parseParam))
        const now = yield* Clock.currentTimeMillis
        const [orderBy, descending] = SORTS[o.sort]
        const all = yield* cache.list({
          namespace: Option.getOrUndefined(o.namespace),
          orderBy,
          descending: o.reverse ? !descending : descending
        })
        const matching = all.filter((e) =>
          (!o.expired || (e.expiresAt !== null && e.expiresAt <= now)) &&
          (o.param.length === 0 || (e.params !== null && describedContains(e.params as any, wanted as any)))
        )
        const shown = Option.isSome(o.limit) ? matching.slice(0, o.limit.value) : matching
        if (o.json) return yield* printJson(shown)
        if (shown.length === 0) return yield* Console.log(all.length === 0 ? "the cache is empty" : "no entries match")
        yield* Console.log(table(columns, shown.map((e) => row(e, now))))
        const size = shown.reduce((n, e) => n + e.storedBytes, 0)
        yield* Console.log(
          `\n${formatCount(shown.length)} ${shown.length === 1 ? "entry" : "entries"}, ${formatBytes(size)}` +
            (matching.length > shown.length ? ` (${formatCount(matching.length - shown.length)} more not shown)` : "")
        )
      }), { readOnly: true })
).pipe(Command.withDescription(
  "List entries: key, namespace, format, size, hits, ages, expiry, fresh / stale, description."
))
