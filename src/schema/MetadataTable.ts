/**
 * Custom metadata tables: the Effect answer to the seed's `@custom_metadata_model`. A table is
 * declared with a `Schema.Struct`; rows are attached to entries on `put`, validated, stored in the
 * same transaction as the entry, deleted with it, and queried with typed filters or raw SQL.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as ParseResult from "effect/ParseResult"
import * as Predicate from "effect/Predicate"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"
import type { ColumnType, TableColumn, TableCondition, TableDefinition } from "../metadata/service.js"
import { MetadataError } from "../metadata/service.js"

const NAME = /^[a-z_][a-z0-9_]{0,62}$/

/**
 * A declared custom metadata table. `A` is the row type the application sees.
 *
 * @since 0.1.0
 * @category models
 */
export interface MetadataTable<A = any, I = any> {
  readonly _tag: "MetadataTable"
  readonly name: string
  readonly schema: Schema.Schema<A, I, never>
  readonly definition: TableDefinition
}

/**
 * @since 0.1.0
 * @category models
 */
export interface MetadataTableOptions<A> {
  /** Columns to index; each entry is a column or a list of columns (a composite index). */
  readonly indexes?: ReadonlyArray<(keyof A & string) | ReadonlyArray<keyof A & string>> | undefined
  /** Columns (or column lists) whose values must be unique across the table. */
  readonly unique?: ReadonlyArray<(keyof A & string) | ReadonlyArray<keyof A & string>> | undefined
}

/**
 * Comparisons on one column of a typed filter.
 *
 * @since 0.1.0
 * @category models
 */
export interface ColumnFilter<V> {
  readonly eq?: V | undefined
  readonly ne?: V | undefined
  readonly gt?: V | undefined
  readonly gte?: V | undefined
  readonly lt?: V | undefined
  readonly lte?: V | undefined
  readonly in?: ReadonlyArray<V> | undefined
}

/**
 * A typed filter: per column, a value (equality) or comparisons. All conditions must hold.
 *
 * @since 0.1.0
 * @category models
 */
export type MetadataFilter<A> = { readonly [K in keyof A]?: A[K] | ColumnFilter<A[K]> }

/**
 * @since 0.1.0
 * @category models
 */
export interface QueryMetadataOptions<A> {
  readonly where?: MetadataFilter<A> | undefined
  readonly orderBy?: (keyof A & string) | undefined
  readonly descending?: boolean | undefined
  readonly limit?: number | undefined
}

const OPERATORS: Record<keyof ColumnFilter<unknown>, TableCondition["op"]> = {
  eq: "=",
  ne: "!=",
  gt: ">",
  gte: ">=",
  lt: "<",
  lte: "<=",
  in: "in"
}

const invalid = (method: string, reason: MetadataError["reason"], description: string, cause?: unknown) =>
  new MetadataError({ method, reason, description, cause })

/** The stored type of an encoded property, or `undefined` when it cannot be a column. */
const columnOf = (ast: AST.AST): { type: ColumnType; nullable: boolean } | undefined => {
  switch (ast._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      return { type: "text", nullable: false }
    case "NumberKeyword":
      return { type: "real", nullable: false }
    case "BooleanKeyword":
      return { type: "boolean", nullable: false }
    case "Literal":
      return ast.literal === null
        ? { type: "text", nullable: true }
        : typeof ast.literal === "string"
        ? { type: "text", nullable: false }
        : typeof ast.literal === "number"
        ? { type: "real", nullable: false }
        : typeof ast.literal === "boolean"
        ? { type: "boolean", nullable: false }
        : undefined
    case "Enums":
      return { type: ast.enums.every(([, v]) => typeof v === "number") ? "real" : "text", nullable: false }
    case "Refinement":
      return columnOf(ast.from)
    case "Suspend":
      return { type: "json", nullable: true }
    case "UndefinedKeyword":
      return undefined
    case "Union": {
      const members = ast.types.filter((t) =>
        !(t._tag === "UndefinedKeyword" || (t._tag === "Literal" && t.literal === null))
      )
      const nullable = members.length !== ast.types.length
      const kinds = members.map(columnOf)
      if (kinds.some((k) => k === undefined)) return undefined
      const types = new Set(kinds.map((k) => k!.type))
      return { type: types.size === 1 ? kinds[0]!.type : "json", nullable: nullable || kinds.some((k) => k!.nullable) }
    }
    case "TypeLiteral":
    case "TupleType":
    case "UnknownKeyword":
    case "AnyKeyword":
      return { type: "json", nullable: true }
    default:
      return undefined
  }
}

const asList = (spec: string | ReadonlyArray<string>): ReadonlyArray<string> => typeof spec === "string" ? [spec] : spec

/**
 * Declares a custom metadata table. `name` becomes the SQL table name (lowercase letters, digits,
 * `_`; not starting with `cacheness_`); each field of the struct becomes a column. Register the
 * handle with `Cache.layer({ metadataTables: [handle] })`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const metadataTable = <Fields extends Schema.Struct.Fields>(
  name: string,
  schema: Schema.Struct<Fields>,
  options?: MetadataTableOptions<Schema.Struct.Type<Fields>>
): MetadataTable<Schema.Struct.Type<Fields>, Schema.Struct.Encoded<Fields>> => {
  const method = "Cache.metadataTable"
  if (!NAME.test(name) || name.startsWith("cacheness_")) {
    throw invalid(
      method,
      "InvalidRow",
      `table name ${JSON.stringify(name)} must match ${NAME} and not start with "cacheness_"`
    )
  }
  const encoded = AST.encodedAST(schema.ast)
  if (encoded._tag !== "TypeLiteral" || encoded.indexSignatures.length > 0) {
    throw invalid(method, "InvalidRow", `table ${name}: the schema must be a Schema.Struct of named fields`)
  }
  const columns: Array<TableColumn> = []
  for (const property of encoded.propertySignatures) {
    const column = String(property.name)
    if (!NAME.test(column) || column === "cache_key") {
      throw invalid(
        method,
        "InvalidRow",
        `table ${name}: column ${JSON.stringify(column)} must match ${NAME} and not be "cache_key"`
      )
    }
    const kind = columnOf(property.type)
    if (kind === undefined) {
      throw invalid(method, "InvalidRow", `table ${name}: column ${column} has no storable type`)
    }
    columns.push({ name: column, type: kind.type, nullable: kind.nullable || property.isOptional })
  }
  const known = new Set(columns.map((c) => c.name))
  const lists = (specs: ReadonlyArray<string | ReadonlyArray<string>> | undefined, what: string) =>
    (specs ?? []).map((spec) => {
      const list = asList(spec)
      for (const column of list) {
        if (!known.has(column)) {
          throw invalid(method, "InvalidRow", `table ${name}: ${what} names unknown column ${column}`)
        }
      }
      return list
    })
  return {
    _tag: "MetadataTable",
    name,
    schema: schema as any,
    definition: {
      name,
      columns,
      indexes: lists(options?.indexes, "an index"),
      unique: lists(options?.unique, "a unique constraint")
    }
  }
}

/**
 * Validates and encodes a row for storage.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeRow = (table: MetadataTable, row: unknown): Effect.Effect<Record<string, unknown>, MetadataError> =>
  Effect.flatMap(
    Effect.mapError(
      Schema.encodeUnknown(table.schema)(row),
      (error) =>
        invalid(
          "Cache.put",
          "InvalidRow",
          `metadata for table ${table.name} does not match its schema: ${
            ParseResult.TreeFormatter.formatErrorSync(error)
          }`,
          error
        )
    ),
    (encoded) =>
      Effect.try({
        try: () => {
          const out: Record<string, unknown> = {}
          for (const column of table.definition.columns) {
            const value = (encoded as Record<string, unknown>)[column.name]
            out[column.name] = value === undefined || value === null
              ? null
              : column.type === "json"
              ? JSON.stringify(value)
              : value
          }
          return out
        },
        catch: (cause) =>
          invalid("Cache.put", "InvalidRow", `metadata for table ${table.name} is not JSON-serialisable`, cause)
      })
  )

/**
 * Decodes a stored row back to the table's type.
 *
 * @since 0.1.0
 * @category encoding
 */
export const decodeRow = <A>(
  table: MetadataTable<A>,
  stored: Readonly<Record<string, unknown>>
): Effect.Effect<A, MetadataError> => {
  const encoded: Record<string, unknown> = {}
  for (const column of table.definition.columns) {
    const value = stored[column.name]
    if (value === null || value === undefined) {
      // An optional field is absent; a nullable one is null.
      if (!column.nullable) encoded[column.name] = value
      else encoded[column.name] = value === null ? null : undefined
      continue
    }
    encoded[column.name] = column.type === "json"
      ? JSON.parse(String(value))
      : column.type === "boolean"
      ? value === true || value === 1 || value === "1"
      : column.type === "real"
      ? Number(value)
      : value
  }
  return Schema.decodeUnknown(table.schema)(encoded).pipe(
    // An optional column reads back as null; retry with the nulls removed.
    Effect.orElse(() =>
      Schema.decodeUnknown(table.schema)(Object.fromEntries(Object.entries(encoded).filter(([, v]) => v !== null)))
    ),
    Effect.mapError((error) =>
      invalid(
        "Cache.queryMetadata",
        "InvalidRow",
        `a stored row of ${table.name} does not decode: ${ParseResult.TreeFormatter.formatErrorSync(error)}`,
        error
      )
    )
  )
}

const isColumnFilter = (value: unknown): value is ColumnFilter<unknown> =>
  Predicate.isRecord(value) && !(value instanceof Date) && Object.keys(value).length > 0 &&
  Object.keys(value).every((k) => k in OPERATORS)

/**
 * Turns a typed filter into store conditions, encoding each value through its column's schema.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeFilter = <A>(
  table: MetadataTable<A>,
  filter: MetadataFilter<A> | undefined
): Effect.Effect<ReadonlyArray<TableCondition>, MetadataError> =>
  Effect.try({
    try: () => {
      const conditions: Array<TableCondition> = []
      const fields = (table.schema as unknown as Schema.Struct<Schema.Struct.Fields>).fields
      const byName = new Map(table.definition.columns.map((c) => [c.name, c]))
      for (const [name, spec] of Object.entries(filter ?? {})) {
        if (spec === undefined) continue
        const column = byName.get(name)
        if (column === undefined) throw new Error(`table ${table.name} has no column ${name}`)
        if (column.type === "json") throw new Error(`column ${name} holds JSON and cannot be filtered; use raw SQL`)
        const one = Schema.Struct({ [name]: fields[name] } as Schema.Struct.Fields)
        const encode = (value: unknown) =>
          (Schema.encodeUnknownSync(one as unknown as Schema.Schema<any, any, never>)({ [name]: value }) as Record<
            string,
            unknown
          >)[name]
        if (!isColumnFilter(spec)) {
          conditions.push({ column: name, op: "=", value: encode(spec) })
          continue
        }
        for (const [key, value] of Object.entries(spec)) {
          if (value === undefined) continue
          const op = OPERATORS[key as keyof ColumnFilter<unknown>]
          conditions.push({
            column: name,
            op,
            value: op === "in" ? (value as ReadonlyArray<unknown>).map(encode) : encode(value)
          })
        }
      }
      return conditions
    },
    catch: (cause) =>
      invalid(
        "Cache.queryMetadata",
        "InvalidRow",
        `invalid filter on ${table.name}: ${
          cause instanceof ParseResult.ParseError
            ? ParseResult.TreeFormatter.formatErrorSync(cause)
            : cause instanceof Error
            ? cause.message
            : String(cause)
        }`,
        cause
      )
  })
