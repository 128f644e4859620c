/**
 * How a table's Schema columns are stored in SQL, the same way on DuckDB, SQLite and PostgreSQL.
 *
 * Times and numbers are stored as DOUBLE PRECISION (epoch milliseconds for times): exact, ordered,
 * and every driver hands them back as JavaScript numbers. Anything that is not a primitive is
 * stored as the JSON of its Schema encoding.
 *
 * @since 0.1.0
 */
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import * as AST from "effect/SchemaAST"

/**
 * @since 0.1.0
 * @category models
 */
export type ColumnKind = "text" | "number" | "boolean" | "date" | "json"

/**
 * @since 0.1.0
 * @category models
 */
export interface Column {
  readonly name: string
  readonly kind: ColumnKind
  readonly nullable: boolean
  readonly toSql: (value: unknown) => unknown
  readonly fromSql: (value: unknown) => unknown
}

const SQL_TYPE: Record<ColumnKind, string> = {
  text: "TEXT",
  number: "DOUBLE PRECISION",
  boolean: "DOUBLE PRECISION",
  date: "DOUBLE PRECISION",
  json: "TEXT"
}

/**
 * The SQL type of a column kind (the same text on all three backends).
 *
 * @since 0.1.0
 * @category sql
 */
export const sqlType = (kind: ColumnKind): string => SQL_TYPE[kind]

/**
 * Names that are safe as unquoted-looking identifiers on every backend.
 *
 * @since 0.1.0
 * @category validation
 */
export const isIdentifier = (name: string): boolean => /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(name)

const stripRefinements = (ast: AST.AST): AST.AST => (ast._tag === "Refinement" ? stripRefinements(ast.from) : ast)

const primitiveKind = (ast: AST.AST): ColumnKind | undefined => {
  const t = stripRefinements(ast)
  switch (t._tag) {
    case "StringKeyword":
    case "TemplateLiteral":
      return "text"
    case "NumberKeyword":
      return "number"
    case "BooleanKeyword":
      return "boolean"
    case "Literal":
      return typeof t.literal === "string"
        ? "text"
        : typeof t.literal === "number"
        ? "number"
        : typeof t.literal === "boolean"
        ? "boolean"
        : undefined
    case "Enums":
      return t.enums.every(([, v]) => typeof v === "string")
        ? "text"
        : t.enums.every(([, v]) => typeof v === "number")
        ? "number"
        : undefined
    case "Declaration":
      return Option.getOrUndefined(AST.getIdentifierAnnotation(t)) === "DateFromSelf" ? "date" : undefined
    default:
      return undefined
  }
}

const isNullish = (ast: AST.AST) => ast._tag === "UndefinedKeyword" || (ast._tag === "Literal" && ast.literal === null)

const classify = (ast: AST.AST): { kind: ColumnKind; nullable: boolean } => {
  const t = stripRefinements(ast)
  if (t._tag === "Union") {
    const members = t.types.filter((m) => !isNullish(m))
    const kinds = new Set(members.map(primitiveKind))
    const nullable = members.length !== t.types.length
    if (kinds.size === 1 && !kinds.has(undefined)) return { kind: [...kinds][0]!, nullable }
    return { kind: "json", nullable }
  }
  return { kind: primitiveKind(t) ?? "json", nullable: false }
}

/**
 * The columns of a Struct schema, in declaration order, with their conversions to and from SQL.
 *
 * @since 0.1.0
 * @category constructors
 */
export const columnsOf = (schema: Schema.Struct<any>): Array<Column> => {
  // JSON columns store the Schema *encoding*, so they need the full field schema, not its type side.
  const full = new Map(
    schema.ast._tag === "TypeLiteral" ? schema.ast.propertySignatures.map((ps) => [ps.name, ps.type]) : []
  )
  const typeLiteral = AST.typeAST(schema.ast)
  const signatures = typeLiteral._tag === "TypeLiteral" ? typeLiteral.propertySignatures : []
  return signatures.map((ps) => {
    const name = String(ps.name)
    const { kind, nullable: nullableType } = classify(ps.type)
    const nullable = nullableType || ps.isOptional
    const absent = ps.isOptional && !nullableType ? undefined : null
    const fieldSchema = Schema.make<any, any, never>(full.get(ps.name) ?? ps.type)
    const encodeJson = kind === "json" ? Schema.encodeSync(fieldSchema) : undefined
    const decodeJson = kind === "json" ? Schema.decodeUnknownSync(fieldSchema) : undefined
    const toSql = (value: unknown): unknown => {
      if (value === null || value === undefined) return null
      switch (kind) {
        case "date":
          return (value as Date).getTime()
        case "boolean":
          return value ? 1 : 0
        case "json":
          return JSON.stringify(encodeJson!(value))
        default:
          return value
      }
    }
    const fromSql = (value: unknown): unknown => {
      if (value === null || value === undefined) return absent
      switch (kind) {
        case "date":
          return new Date(Number(value))
        case "number":
          return Number(value)
        case "boolean":
          return value === 1 || value === true || value === "1"
        case "json":
          return decodeJson!(JSON.parse(String(value)))
        default:
          return String(value)
      }
    }
    return { name, kind, nullable, toSql, fromSql }
  })
}
