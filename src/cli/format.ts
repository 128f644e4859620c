/**
 * Human-readable output for the `cacheness` command: sizes, ages, aligned tables, value previews.
 * Pure functions of their inputs (the current time is passed in), so they are easy to test.
 *
 * @since 0.1.0
 */
import * as Arrow from "apache-arrow"
import * as util from "node:util"

const SIZE_UNITS = ["B", "KiB", "MiB", "GiB", "TiB"] as const

/**
 * A byte count with a 1024-based unit, as the configuration reads them: `1.5 MiB`, `512 B`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatBytes = (bytes: number): string => {
  let value = bytes
  let unit = 0
  while (Math.abs(value) >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024
    unit++
  }
  return unit === 0 ? `${value} B` : `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${SIZE_UNITS[unit]}`
}

const SPANS: ReadonlyArray<readonly [string, number]> = [
  ["d", 86_400_000],
  ["h", 3_600_000],
  ["min", 60_000],
  ["s", 1_000]
]

/**
 * A duration, rounded, in the largest unit it spans at least twice of (so at least two digits of
 * the next smaller unit otherwise): `3 d`, `36 h`, `48 h` (a 48-hour TTL a moment after the put),
 * `2 d`, `12 min`, `40 s`. Infinite is `forever`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatDuration = (millis: number): string => {
  const abs = Math.abs(millis)
  if (!Number.isFinite(abs)) return Number.isNaN(abs) ? "?" : "forever"
  if (abs >= 1e6 * 86_400_000) return "over 1,000,000 d"
  for (const [unit, size] of SPANS) {
    if (abs >= 2 * size || (unit === "s" && abs >= size / 2)) return `${Math.round(abs / size)} ${unit}`
  }
  return abs === 0 ? "0 s" : "<1 s"
}

/**
 * `n` and the noun, singular or plural as `n` asks: `1 entry`, `2 entries`, `1,000 problems`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const plural = (n: number, singular: string, many = `${singular}s`): string =>
  `${formatCount(n)} ${n === 1 ? singular : many}`

/** C0 and C1 controls, DEL, and the line/paragraph separators: what a terminal may act on. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g
const NAMED: Record<string, string> = { "\n": "\\n", "\r": "\\r", "\t": "\\t" }

/**
 * Text from the cache (namespaces, descriptions, params, values) made safe to print: control
 * characters become visible escapes (`\x1b`, `\n`, `\u009b`), so stored text can neither move
 * the cursor, clear the screen nor fake lines of output.
 *
 * @since 0.1.0
 * @category formatting
 */
export const escapeControl = (text: string): string =>
  text.replace(CONTROL, (c) => {
    const code = c.charCodeAt(0)
    return NAMED[c] ??
      (code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`)
  })

/**
 * A multi-line rendering escaped line by line: its own line breaks stay, any other control goes.
 *
 * @since 0.1.0
 * @category formatting
 */
export const escapeLines = (text: string): string => text.split("\n").map(escapeControl).join("\n")

/** The latest time a `Date` can hold, in milliseconds either side of 1970. */
const MAX_DATE = 8.64e15

/**
 * A stored time as ISO 8601, or a description of it when no `Date` can hold it (an infinite or
 * damaged value): never a `RangeError`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatIso = (time: number): string =>
  Number.isFinite(time) && Math.abs(time) <= MAX_DATE
    ? new Date(time).toISOString()
    : Number.isNaN(time)
    ? "invalid time"
    : time > 0
    ? "far future"
    : "far past"

/**
 * How long ago a time was: `5 min ago`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatAge = (time: number, now: number): string => `${formatDuration(now - time)} ago`

/**
 * When an entry expires, relative to now: `in 3 h`, `expired 2 d ago`, `never`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatExpiry = (expiresAt: number | null, now: number): string =>
  expiresAt === null || expiresAt === Number.POSITIVE_INFINITY
    ? "never"
    : expiresAt > now
    ? `in ${formatDuration(expiresAt - now)}`
    : `expired ${formatDuration(now - expiresAt)} ago`

/**
 * A count with thousands separators.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatCount = (n: number): string => n.toLocaleString("en-US")

/**
 * @since 0.1.0
 * @category formatting
 */
export const formatPercent = (ratio: number): string => `${(ratio * 100).toFixed(1)}%`

/**
 * Cuts a string to `width` characters, marking the cut with an ellipsis.
 *
 * @since 0.1.0
 * @category formatting
 */
export const truncate = (text: string, width: number): string =>
  text.length <= width ? text : `${text.slice(0, Math.max(0, width - 1))}…`

/**
 * A column of a table: its header, and whether numbers-like values align right.
 *
 * @since 0.1.0
 * @category models
 */
export interface Column {
  readonly header: string
  readonly align?: "left" | "right"
}

/**
 * Rows as an aligned table with a header line; trailing spaces trimmed.
 *
 * @since 0.1.0
 * @category formatting
 */
export const table = (columns: ReadonlyArray<Column>, rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  rows = rows.map((r) => r.map(escapeControl))
  const widths = columns.map((c, i) => Math.max(c.header.length, ...rows.map((r) => (r[i] ?? "").length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (columns[i].align === "right" ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join("  ")
      .trimEnd()
  return [line(columns.map((c) => c.header)), ...rows.map(line)].join("\n")
}

/**
 * Label–value lines with the values aligned: the layout of `stats` and `inspect`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const fields = (pairs: ReadonlyArray<readonly [string, string]>): string => {
  const width = Math.max(...pairs.map(([label]) => label.length))
  return pairs
    .map(([label, value]) => {
      const [first, ...rest] = value.split("\n").map(escapeControl)
      return [`${label.padEnd(width)}  ${first}`, ...rest.map((l) => `${" ".repeat(width)}  ${l}`)].join("\n")
    })
    .join("\n")
}

/**
 * Key params as one short line: `model=xgboost dataset=customer_data`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatParams = (params: Record<string, unknown> | null): string =>
  params === null
    ? ""
    : Object.entries(params)
      .map(([name, value]) => `${name}=${typeof value === "string" ? value : JSON.stringify(value)}`)
      .join(" ")

const hexDump = (bytes: Uint8Array, limit: number): string => {
  const lines: Array<string> = []
  const shown = Math.min(bytes.length, limit)
  for (let offset = 0; offset < shown; offset += 16) {
    const row = bytes.subarray(offset, Math.min(offset + 16, shown))
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ")
    const text = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("")
    lines.push(`${offset.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${text}`)
  }
  if (bytes.length > shown) lines.push(`… ${formatCount(bytes.length - shown)} more bytes`)
  return lines.join("\n")
}

/** One cell of an Arrow preview: scalars as text, nested values as JSON. */
const arrowCell = (value: unknown): string => {
  if (value === null || value === undefined) return "null"
  if (typeof value === "string") return value
  if (typeof value === "bigint" || typeof value === "number" || typeof value === "boolean") return String(value)
  if (value instanceof Date) return formatIso(value.getTime())
  try {
    return JSON.stringify(value, jsonReplacer) ?? String(value)
  } catch {
    return String(value)
  }
}

/** An Arrow table as its shape, its schema (field names and types) and its first rows. */
const arrowPreview = (value: Arrow.Table, rows: number): string => {
  const fieldList = value.schema.fields
  const shown = Math.min(value.numRows, rows)
  const cells: Array<Array<string>> = []
  for (let i = 0; i < shown; i++) {
    cells.push(fieldList.map((_, j) => truncate(arrowCell(value.getChildAt(j)?.get(i)), 40)))
  }
  const lines = [
    `Arrow table: ${plural(value.numRows, "row")}, ${plural(fieldList.length, "column")}`,
    "schema:",
    ...fieldList.map((f) => `  ${f.name}: ${String(f.type)}${f.nullable ? "" : " not null"}`)
  ]
  if (shown > 0 && fieldList.length > 0) {
    lines.push(`first ${plural(shown, "row")}:`, table(fieldList.map((f) => ({ header: f.name })), cells))
  }
  return lines.join("\n")
}

/**
 * A short, readable rendering of a stored value: a hex dump for bytes, the start of a string,
 * an Arrow table's schema and first rows, `util.inspect` (depth- and length-limited) for anything
 * else.
 *
 * @since 0.1.0
 * @category formatting
 */
export const preview = (value: unknown, maxLines = 20): string => {
  let text: string
  if (value instanceof Uint8Array) {
    text = `${formatCount(value.length)} bytes\n${hexDump(value, 16 * Math.max(1, maxLines - 2))}`
  } else if (value instanceof Arrow.Table) {
    return arrowPreview(value, 10)
  } else {
    text = util.inspect(value, { depth: 4, maxArrayLength: 20, maxStringLength: 400, breakLength: 100, colors: false })
  }
  const lines = text.split("\n")
  return lines.length <= maxLines
    ? text
    : [...lines.slice(0, maxLines), `… ${lines.length - maxLines} more lines`].join("\n")
}

/**
 * A JSON replacer for values the v8 serializer stores but JSON cannot express: bigints, Maps,
 * Sets, typed arrays. Used by `get` and `--json` output.
 *
 * @since 0.1.0
 * @category formatting
 */
export const jsonReplacer = (_key: string, value: unknown): unknown => {
  if (typeof value === "bigint") return value.toString()
  if (value instanceof Map) {
    return Object.fromEntries(
      Array.from(value, ([k, v]) => [typeof k === "string" ? k : JSON.stringify(k, jsonReplacer), v])
    )
  }
  if (value instanceof Set) return Array.from(value)
  // A table's own JSON is its internals (batches, buffers): its shape and schema say what it is.
  if (value instanceof Arrow.Table) {
    return {
      arrowTable: {
        numRows: value.numRows,
        schema: value.schema.fields.map((f) => ({ name: f.name, type: String(f.type), nullable: f.nullable }))
      }
    }
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    return Array.from(value as unknown as ArrayLike<number | bigint>)
  }
  return value
}
