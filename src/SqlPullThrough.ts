/**
 * The SQL pull-through cache: the service, its table and handle constructors, and its layers.
 *
 * @since 0.1.0
 */
export * from "./services/SqlPullThrough.js"
export { layerDuckDB } from "./layers/SqlPullThroughDuckDB.js"
export { layerPg } from "./layers/SqlPullThroughPg.js"
export { layerSqlite } from "./layers/SqlPullThroughSqlite.js"
export type { DuckDBOptions } from "./layers/SqlPullThroughDuckDB.js"
export type { PgOptions } from "./layers/SqlPullThroughPg.js"
export type { SqliteOptions } from "./layers/SqlPullThroughSqlite.js"
