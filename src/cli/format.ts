/**
 * Human-readable output for the `cacheness` command: sizes, ages, aligned tables, value previews.
 * Pure functions of their inputs (the current time is passed in), so they are easy to test.
 *
 * @since 0.1.0
 */
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
 * A duration in its largest whole unit: `3 d`, `5 h`, `12 min`, `40 s`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatDuration = (millis: number): string => {
  const abs = Math.abs(millis)
  for (const [unit, size] of SPANS) {
    if (abs >= size) return `${Math.floor(abs / size)} ${unit}`
  }
  return abs === 0 ? "0 s" : "<1 s"
}

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
  expiresAt === null
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
      const [first, ...rest] = value.split("\n")
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

/**
 * A short, readable rendering of a stored value: a hex dump for bytes, the start of a string,
 * `util.inspect` (depth- and length-limited) for anything else.
 *
 * @since 0.1.0
 * @category formatting
 */
export const preview = (value: unknown, maxLines = 20): string => {
  let text: string
  if (value instanceof Uint8Array) {
    text = `${formatCount(value.length)} bytes\n${hexDump(value, 16 * Math.max(1, maxLines - 2))}`
  } else {
    text = util.inspect(value, { depth: 4, maxArrayLength: 20, maxStringLength: 400, breakLength: 100, colors: false })
  }
  const lines = text.split("\n")
  return lines.length <= maxLines ? text : [...lines.slice(0, maxLines), `… ${lines.length - maxLines} more lines`].join("\n")
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
  if (value instanceof Map) return Object.fromEntries(Array.from(value, ([k, v]) => [typeof k === "string" ? k : JSON.stringify(k, jsonReplacer), v]))
  if (value instanceof Set) return Array.from(value)
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) return Array.from(value as unknown as ArrayLike<number | bigint>)
  return value
}
