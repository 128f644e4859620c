/**
 * `cacheness cleanup`, `prune --to SIZE` and `clear --yes`: removal, each reporting what went.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { parseSize } from "../../schema/CacheConfig.js"
import { usage } from "../exit.js"
import { formatBytes, formatCount } from "../format.js"
import * as Progress from "../progress.js"
import { dir, json, printJson, withCache } from "../shared.js"

const entries = (n: number) => `${formatCount(n)} ${n === 1 ? "entry" : "entries"}`

/**
 * @since 0.1.0
 * @category commands
 */
export const cleanup = Command.make(
  "cleanup",
  { dir, json },
  (o) =>
    withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        const removed = yield* cache.cleanupExpired()
        if (o.json) return yield* printJson({ removed })
        yield* Console.log(`removed ${entries(removed)} (expired)`)
      }))
).pipe(Command.withDescription("Remove expired entries and their files."))

const to = Options.text("to").pipe(
  Options.withDescription("The size to shrink to: bytes, or with a 1024-based unit (\"500 MB\", \"2GiB\")."),
  Options.withPseudoName("SIZE")
)

/**
 * @since 0.1.0
 * @category commands
 */
export const prune = Command.make("prune", { dir, json, to }, (o) =>
  Effect.gen(function*() {
    const target = parseSize(o.to)
    if (Option.isNone(target)) return yield* usage(`--to ${o.to}: not a size (try "500 MB" or a byte count)`)
    yield* withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        const bar = Progress.make("prune")
        const result = yield* cache.prune(target.value, { onProgress: bar.update }).pipe(
          Effect.ensuring(Effect.sync(bar.finish))
        )
        const after = (yield* cache.stats()).totalBytes
        if (o.json) return yield* printJson({ evicted: result.entries, bytes: result.bytes, totalBytes: after })
        yield* Console.log(
          result.entries === 0
            ? `nothing to evict: ${formatBytes(after)} is within ${formatBytes(target.value)}`
            : `evicted ${entries(result.entries)} (${formatBytes(result.bytes)}), least recently used first; ${
              formatBytes(after)
            } remain`
        )
      }))
  })).pipe(Command.withDescription("Evict least-recently-used entries until the cache is at most --to SIZE."))

const yes = Options.boolean("yes").pipe(Options.withAlias("y"), Options.withDescription("Confirm: remove every entry."))

/**
 * @since 0.1.0
 * @category commands
 */
export const clear = Command.make(
  "clear",
  { dir, json, yes },
  (o) =>
    withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        if (!o.yes) {
          const n = (yield* cache.stats()).entries
          return yield* usage(`refusing to remove ${entries(n)} without --yes`)
        }
        const removed = yield* cache.clear()
        if (o.json) return yield* printJson({ removed })
        yield* Console.log(`removed ${entries(removed)}`)
      }))
).pipe(Command.withDescription("Remove every entry (needs --yes)."))
