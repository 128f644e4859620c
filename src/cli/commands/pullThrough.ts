/**
 * `cacheness pull-through stats`: the tables a SQL pull-through database caches, read from its
 * coverage ledger — rows, fetched intervals (fresh or stale), filter sets, last fetch. Needs no
 * table definitions, so it works on any database the pull-through cache wrote.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Clock from "effect/Clock"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import type * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as path from "node:path"
import { SqlPullThrough, type SqlPullThroughError } from "../../pullthrough/service.js"
import { LEDGER } from "../../pullthrough/sql.js"
import { CliExit, ExitCode, notFound, usage } from "../exit.js"
import { formatAge, formatCount, table } from "../format.js"
import { json, printJson } from "../shared.js"

const db = Options.file("db").pipe(
  Options.withPseudoName("FILE"),
  Options.withDescription("A DuckDB or SQLite database file written by the pull-through cache."),
  Options.optional
)
const url = Options.redacted("url").pipe(
  Options.withPseudoName("URL"),
  Options.withDescription("A PostgreSQL connection URL instead of a file."),
  Options.optional
)
const schema = Options.text("schema").pipe(
  Options.withDescription("The PostgreSQL schema (with --url)."),
  Options.optional
)
const backend = Options.choice("backend", ["duckdb", "sqlite"]).pipe(
  Options.withDescription(
    "The file's engine; by default from its extension (.duckdb, .ddb → duckdb; .db, .sqlite, .sqlite3 → sqlite)."
  ),
  Options.optional
)

/** Database drivers load only when this command runs: the other commands start faster without them. */
const load = <A>(f: () => Promise<A>) =>
  Effect.tryPromise({
    try: f,
    catch: (cause) =>
      new CliExit({ code: ExitCode.CacheError, message: `cannot load the database driver: ${String(cause)}` })
  })

const EXTENSIONS: Record<string, "duckdb" | "sqlite"> = {
  ".duckdb": "duckdb",
  ".ddb": "duckdb",
  ".db": "sqlite",
  ".sqlite": "sqlite",
  ".sqlite3": "sqlite"
}

interface TableStats {
  readonly table: string
  readonly rows: number | null
  readonly intervals: number
  readonly freshIntervals: number
  readonly filterSets: number
  readonly lastFetchAt: Date | null
}

const collect = Effect.gen(function*() {
  const { schema, sql } = yield* SqlPullThrough
  const qualify = (name: string) => (schema === undefined ? name : `${schema}.${name}`)
  const now = yield* Clock.currentTimeMillis
  const ledger = yield* sql<{ table_name: string; n: unknown; fresh: unknown; keys: unknown; last: unknown }>`
    SELECT table_name, COUNT(*) AS n,
      SUM(CASE WHEN expires_at IS NULL OR expires_at > ${now} THEN 1 ELSE 0 END) AS fresh,
      COUNT(DISTINCT filters_key) AS keys, MAX(fetched_at) AS last
    FROM ${sql(qualify(LEDGER))} GROUP BY table_name ORDER BY table_name`.pipe(
    Effect.mapError(() => notFound(`no pull-through ledger (${LEDGER}) in this database`))
  )
  return yield* Effect.forEach(
    ledger,
    (l) =>
      sql<{ n: unknown }>`SELECT COUNT(*) AS n FROM ${sql(qualify(l.table_name))}`.pipe(
        Effect.map(([r]) => Number(r?.n ?? 0)),
        // The data table may have been dropped by hand while its ledger rows remain.
        Effect.orElseSucceed(() => null),
        Effect.map((rows): TableStats => ({
          table: l.table_name,
          rows,
          intervals: Number(l.n),
          freshIntervals: Number(l.fresh ?? 0),
          filterSets: Number(l.keys),
          lastFetchAt: l.last === null || l.last === undefined ? null : new Date(Number(l.last))
        }))
      )
  )
})

const stats = Command.make("stats", { db, url, schema, backend, json }, (o) =>
  Effect.gen(function*() {
    let layer: Layer.Layer<SqlPullThrough, SqlPullThroughError>
    if (Option.isSome(o.url)) {
      if (Option.isSome(o.db)) return yield* usage("give --db or --url, not both")
      const { layerPg } = yield* load(() => import("../../pullthrough/pg.js"))
      layer = layerPg({ url: o.url.value, schema: Option.getOrUndefined(o.schema) })
    } else if (Option.isSome(o.db)) {
      const file = path.resolve(o.db.value)
      // Opening a missing file would create an empty database: say it is not there instead.
      if (!fs.existsSync(file)) return yield* notFound(`no database at ${file}`)
      const engine = Option.getOrUndefined(o.backend) ?? EXTENSIONS[path.extname(file).toLowerCase()]
      if (engine === undefined) {
        return yield* usage(`cannot tell the engine of ${file} from its extension: add --backend duckdb|sqlite`)
      }
      layer = engine === "duckdb"
        ? (yield* load(() => import("../../pullthrough/duckdb.js"))).layerDuckDB({ filename: file })
        : (yield* load(() => import("../../pullthrough/sqlite.js"))).layerSqlite({ filename: file })
    } else {
      return yield* usage("give the pull-through database: --db FILE (DuckDB or SQLite) or --url postgres://…")
    }
    const tables = yield* collect.pipe(
      Effect.provide(layer),
      Effect.catchTag("SqlPullThroughError", (e) =>
        Effect.fail(new CliExit({ code: ExitCode.CacheError, message: e.message })))
    )
    if (o.json) {
      return yield* printJson(tables)
    }
    if (tables.length === 0) {
      return yield* Console.log("no pull-through tables")
    }
    const now = yield* Clock.currentTimeMillis
    yield* Console.log(table(
      [
        { header: "TABLE" },
        { header: "ROWS", align: "right" },
        { header: "INTERVALS", align: "right" },
        { header: "FRESH", align: "right" },
        { header: "FILTER SETS", align: "right" },
        { header: "LAST FETCH", align: "right" }
      ],
      tables.map((t) => [
        t.table,
        t.rows === null ? "(missing)" : formatCount(t.rows),
        formatCount(t.intervals),
        formatCount(t.freshIntervals),
        formatCount(t.filterSets),
        t.lastFetchAt === null ? "-" : formatAge(t.lastFetchAt.getTime(), now)
      ])
    ))
  })).pipe(
    Command.withDescription(
      "Show each cached table of a pull-through database: rows, fetched intervals, freshness, last fetch."
    )
  )

/**
 * @since 0.1.0
 * @category commands
 */
export const pullThrough = Command.make("pull-through").pipe(
  Command.withDescription("Inspect a SQL pull-through cache database."),
  Command.withSubcommands([stats])
)
