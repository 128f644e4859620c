/**
 * Child of test/lazyImports.test.ts: which native libraries of `@duckdb/node-api` a process holds
 * after importing cacheness, and after opening (and querying) a DuckDB pull-through backend.
 */
import * as Effect from "effect/Effect"
import { SqlPullThrough } from "../../src/index.js"

const duckdbLoaded = () =>
  (process.report.getReport() as { sharedObjects: Array<string> }).sharedObjects.some((file) => /duckdb/i.test(file))

const atImport = duckdbLoaded()
const rows = await Effect.runPromise(
  Effect.gen(function*() {
    const backend = yield* SqlPullThrough.SqlPullThrough
    return yield* backend.sql<{ readonly answer: number }>`select 42 as answer`
  }).pipe(Effect.provide(SqlPullThrough.layerDuckDB()))
)
console.log(JSON.stringify({ atImport, afterOpen: duckdbLoaded(), answer: rows[0]?.answer }))
