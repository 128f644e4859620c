/**
 * `cacheness inspect KEY`: an entry's metadata, key params and a preview of its value.
 *
 * @since 0.1.0
 */
import * as Args from "@effect/cli/Args"
import * as Command from "@effect/cli/Command"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import { notFound } from "../exit.js"
import { fields, formatAge, formatBytes, formatCount, formatExpiry, formatIso, preview } from "../format.js"
import { dir, json, printJson, resolveKey, withCache } from "../shared.js"

/**
 * The KEY argument: 16 hex digits, or a unique prefix of at least 4.
 *
 * @since 0.1.0
 * @category arguments
 */
export const keyArg = Args.text({ name: "KEY" }).pipe(
  Args.withDescription("A cache key as `cacheness list` shows it, or a unique prefix of at least 4 hex digits.")
)

const when = (time: number, now: number) => `${formatIso(time)} (${formatAge(time, now)})`

/**
 * @since 0.1.0
 * @category commands
 */
export const inspect = Command.make(
  "inspect",
  { key: keyArg, dir, json },
  (o) =>
    withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        const key = yield* resolveKey(cache, o.key)
        const found = yield* cache.getWithMetadata(key)
        if (Option.isNone(found)) return yield* notFound(`no live entry ${key} (absent, expired or unreadable)`)
        const { entry, value } = found.value
        if (o.json) return yield* printJson({ ...entry, value })
        const now = yield* Clock.currentTimeMillis
        const ratio = entry.rawBytes === 0 ? "" : `, ratio ${(entry.storedBytes / entry.rawBytes).toFixed(3)}`
        yield* Console.log(fields([
          ["key", entry.key],
          ["namespace", entry.namespace === "" ? "(none)" : entry.namespace],
          ["description", entry.description ?? "(none)"],
          ["format", `${entry.format}, codec ${entry.codec}`],
          ["size", `${formatBytes(entry.storedBytes)} stored, ${formatBytes(entry.rawBytes)} raw${ratio}`],
          ["created", when(entry.createdAt, now)],
          ["accessed", when(entry.accessedAt, now)],
          [
            "expires",
            entry.expiresAt === null || entry.expiresAt === Infinity
              ? "never"
              : `${formatIso(entry.expiresAt)} (${formatExpiry(entry.expiresAt, now)})`
          ],
          ["hits", formatCount(entry.hits)],
          ["params", entry.params === null ? "(not stored)" : JSON.stringify(entry.params, null, 2)],
          ["metadata", entry.metadata === null ? "(none)" : JSON.stringify(entry.metadata, null, 2)],
          ["value", preview(value)]
        ]))
      }), { readOnly: true })
).pipe(
  Command.withDescription(
    "Show an entry's metadata, key parameters and a preview of its value (read-only: reading it is not counted as a hit)."
  )
)
