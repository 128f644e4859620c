/**
 * What the commands share: the `--dir` and `--json` options, opening the cache a directory holds,
 * and resolving a KEY argument (a full key or a unique prefix).
 *
 * @since 0.1.0
 */
import * as Options from "@effect/cli/Options"
import * as Config from "effect/Config"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import * as CacheLayer from "../cache/layer.js"
import { Cache, type CacheError } from "../cache/service.js"
import type { CacheKey } from "../schema/CacheKey.js"
import { CliExit, notFound, usage } from "./exit.js"
import { jsonReplacer } from "./format.js"

/**
 * `--dir DIR`, after the command; falls back to `CACHENESS_DIR`, then `./.cacheness`.
 *
 * @since 0.1.0
 * @category options
 */
export const dir = Options.directory("dir").pipe(
  Options.withAlias("d"),
  Options.withPseudoName("DIR"),
  Options.withDescription("The cache directory (default: $CACHENESS_DIR, else ./.cacheness)."),
  Options.withFallbackConfig(Config.string("CACHENESS_DIR").pipe(Config.withDefault("./.cacheness")))
)

/**
 * @since 0.1.0
 * @category options
 */
export const json = Options.boolean("json").pipe(Options.withDescription("Print JSON instead of a table."))

/**
 * Prints a value as JSON on stdout.
 *
 * @since 0.1.0
 * @category output
 */
export const printJson = (value: unknown): Effect.Effect<void> => Console.log(jsonText(value))

/**
 * `value` as JSON text; DEL and C1 controls (which JSON allows raw in strings, and terminals
 * obey) are written as `\u` escapes too, so the text stays valid JSON and inert on a terminal.
 *
 * @since 0.1.0
 * @category output
 */
export const jsonText = (value: unknown): string =>
  (JSON.stringify(value, jsonReplacer, 2) ?? "null").replace(
    /[\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`
  )

const maxSizeFromEnv = Config.option(Config.string("CACHENESS_MAX_SIZE")).pipe(
  Config.map(
    Option.map((
      s
    ) => (/^(none|null|never|unlimited)$/i.test(s.trim()) ? null : /^\d+$/.test(s.trim()) ? Number(s) : s.trim()))
  )
)

/**
 * Runs `f` with the cache in `directory`. A directory that holds no cache is "not found" rather
 * than silently created. Housekeeping is off. With `readOnly` (the commands that only look) the
 * cache is opened read-only: nothing in the directory is created, migrated, moved aside or
 * written, and a damaged database is an error (exit 4) rather than recovered.
 *
 * @since 0.1.0
 * @category constructors
 */
export const withCache = <A, E>(
  directory: string,
  f: (cache: Cache.Service) => Effect.Effect<A, E>,
  options?: { readonly readOnly?: boolean }
): Effect.Effect<A, E | CacheError | CliExit> =>
  Effect.gen(function*() {
    const resolved = path.resolve(directory)
    const isCache = fs.existsSync(path.join(resolved, "CACHEDIR.TAG")) ||
      fs.existsSync(path.join(resolved, "cacheness.db"))
    // A cache written with the JSON metadata backend: read it as such rather than starting a database beside it.
    const isJson = !fs.existsSync(path.join(resolved, "cacheness.db")) &&
      fs.existsSync(path.join(resolved, "cacheness.json"))
    if (!isCache) return yield* notFound(`no cache at ${resolved}`)
    const maxSize = yield* Effect.orElseSucceed(maxSizeFromEnv, () => Option.none())
    const layer = (options?.readOnly === true ? CacheLayer.layerReadOnly : CacheLayer.layer)({
      directory: resolved,
      cleanupOnOpen: false,
      cleanupInterval: "100000 days",
      ...(isJson ? { metadataBackend: "json" as const } : {}),
      ...(Option.isSome(maxSize) ? { maxSize: maxSize.value } : {})
    })
    return yield* Effect.provide(Effect.flatMap(Cache, f), layer)
  })

const FULL_KEY = /^[0-9a-f]{16}$/
const PREFIX = /^[0-9a-f]{4,15}$/

/**
 * The key a KEY argument names: the key itself, or the one key starting with a prefix of at
 * least 4 hex digits (like a short git hash).
 *
 * @since 0.1.0
 * @category keys
 */
export const resolveKey = (cache: Cache.Service, input: string): Effect.Effect<CacheKey, CliExit | CacheError> =>
  Effect.gen(function*() {
    const key = input.trim().toLowerCase()
    if (FULL_KEY.test(key)) return key as CacheKey
    if (!PREFIX.test(key)) {
      return yield* usage(
        `"${input}" is not a cache key: give the 16 hex digits \`cacheness list\` shows, or a unique prefix of at least 4`
      )
    }
    const matches = (yield* cache.list({ orderBy: "key" })).filter((e) => e.key.startsWith(key)).map((e) => e.key)
    if (matches.length === 0) return yield* notFound(`no entry with a key starting ${key}`)
    if (matches.length > 1) {
      return yield* usage(
        `key prefix ${key} is ambiguous: ${matches.slice(0, 5).join(", ")}${matches.length > 5 ? ", …" : ""}`
      )
    }
    return matches[0] as CacheKey
  })
