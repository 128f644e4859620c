/**
 * The SQL pull-through cache: the service, its table and handle constructors, and its layers.
 *
 * @since 0.1.0
 */
export { layerDuckDB } from "./pullthrough/duckdb.js"
export type { DuckDBOptions } from "./pullthrough/duckdb.js"
export { layerPg } from "./pullthrough/pg.js"
export type { PgOptions } from "./pullthrough/pg.js"
export * from "./pullthrough/service.js"
export { layerSqlite } from "./pullthrough/sqlite.js"
export type { SqliteOptions } from "./pullthrough/sqlite.js"
