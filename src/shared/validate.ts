/**
 * Checks of the arguments of cache operations, so bad input is a `ConfigError` naming the
 * argument — not a defect — whatever the caller passes: a wrong type, a `null`-prototype object a
 * template string cannot print, a Proxy or getter that throws. Each check returns the value or
 * the error (no Effect), so the hot paths pay a branch, not a fiber step.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import { ConfigError } from "../errors.js"

/**
 * A printable rendering of anything, for error messages; never throws.
 *
 * @since 0.1.0
 * @category validation
 */
export const show = (u: unknown): string => {
  try {
    return typeof u === "string" ? JSON.stringify(u) : typeof u === "bigint" ? `${u}n` : String(u)
  } catch {
    return `a value of type ${typeof u}`
  }
}

const invalid = (field: string, description: string, cause?: unknown) =>
  new ConfigError({ reason: "Invalid", field, description, cause })

const EMPTY: Record<string, unknown> = {}

/**
 * The named fields of an options object, read once: `undefined` and `null` are no options, any
 * other non-object is an error, a read that throws is an error, and so is a field not in
 * `fields` — a misspelt option (`tll`) silently doing nothing is worse than a failure.
 *
 * @since 0.1.0
 * @category validation
 */
export const options = <K extends string>(
  method: string,
  input: unknown,
  fields: ReadonlyArray<K>
): Partial<Record<K, unknown>> | ConfigError => {
  if (input === undefined || input === null) return EMPTY as Partial<Record<K, unknown>>
  if (typeof input !== "object" || Array.isArray(input)) {
    return invalid(method, `options must be an object, got ${show(input)}`)
  }
  const out: Partial<Record<K, unknown>> = {}
  try {
    for (const name of Object.keys(input)) {
      if (!(fields as ReadonlyArray<string>).includes(name)) {
        return invalid(
          `${method}.${name}`,
          `unknown option ${JSON.stringify(name)}; known options: ${fields.join(", ")}`
        )
      }
    }
    for (const field of fields) out[field] = (input as Record<K, unknown>)[field]
  } catch (cause) {
    return invalid(method, `options could not be read: ${show(cause)}`, cause)
  }
  return out
}

/**
 * A check of one field: the value to use, or the error naming `field`.
 *
 * @since 0.1.0
 * @category validation
 */
export type Check<A> = (field: string, input: unknown) => A | ConfigError

/**
 * Checks an options object against a table of field checks: unknown fields, a non-object and
 * each bad field are a `ConfigError` naming `method.field`. The one checker of every public
 * operation's options.
 *
 * @since 0.1.0
 * @category validation
 */
export const fields = <S extends Record<string, Check<unknown>>>(
  method: string,
  input: unknown,
  spec: S
): { -readonly [K in keyof S]: Exclude<ReturnType<S[K]>, ConfigError> } | ConfigError => {
  const names = Object.keys(spec)
  const o = options(method, input, names)
  if (o instanceof ConfigError) return o
  const out: Record<string, unknown> = {}
  for (const name of names) {
    const checked = spec[name]!(`${method}.${name}`, o[name])
    if (checked instanceof ConfigError) return checked
    out[name] = checked
  }
  return out as { -readonly [K in keyof S]: Exclude<ReturnType<S[K]>, ConfigError> }
}

/**
 * Any value, unchecked (a field checked elsewhere, such as a callback the caller owns).
 *
 * @since 0.1.0
 * @category validation
 */
export const anything: Check<unknown> = (_field, input) => input

/**
 * Whether a duration input is negative or not a number, read from the input itself:
 * `Duration.decode` clamps `-5`, `NaN`, `"-1 hour"` and `-Infinity` to zero, so after decoding
 * they would pass as "expire now".
 */
const negativeDuration = (input: unknown): boolean => {
  if (typeof input === "number") return Number.isNaN(input) || input < 0
  if (typeof input === "bigint") return input < 0n
  if (typeof input === "string") return input.trimStart().startsWith("-")
  if (Array.isArray(input)) return input.some((n) => typeof n === "number" && (Number.isNaN(n) || n < 0))
  return false
}

/**
 * The longest finite TTL, 100,000 years in milliseconds: every backend stores expiry times as
 * 64-bit integers (PostgreSQL `bigint`), and `now + ttl` must stay an exact integer.
 *
 * @since 0.1.0
 * @category validation
 */
export const MAX_TTL_MS = 100_000 * 365.25 * 24 * 60 * 60 * 1000

/**
 * A duration in milliseconds; `null` stays `null` (never), `undefined` stays `undefined`.
 * Negative and NaN inputs are rejected before decoding (which would clamp them to 0).
 *
 * @since 0.1.0
 * @category validation
 */
export const duration = (field: string, input: unknown): number | null | undefined | ConfigError => {
  if (input === undefined || input === null) return input
  if (negativeDuration(input)) return invalid(field, `must be a non-negative duration, got ${show(input)}`)
  let decoded: Option.Option<Duration.Duration>
  try {
    decoded = Duration.decodeUnknown(input)
  } catch (cause) {
    return invalid(field, `not a duration: ${show(input)}`, cause)
  }
  if (Option.isNone(decoded)) return invalid(field, `not a duration: ${show(input)}`)
  const millis = Duration.toMillis(decoded.value)
  return Number.isNaN(millis) || millis < 0
    ? invalid(field, `must be a non-negative duration, got ${show(input)}`)
    : millis
}

/**
 * A TTL in milliseconds: a non-negative duration, where an infinite one (`Infinity`,
 * `Duration.infinity`) is `null`, never, like `null` itself; a finite one beyond `MAX_TTL_MS`
 * (`1e308`) is an error, on every backend alike.
 *
 * @since 0.1.0
 * @category validation
 */
export const ttl = (field: string, input: unknown): number | null | undefined | ConfigError => {
  const millis = duration(field, input)
  if (typeof millis !== "number") return millis
  if (millis === Number.POSITIVE_INFINITY) return null
  return millis > MAX_TTL_MS
    ? invalid(field, `${show(input)} is longer than the longest TTL (100,000 years); use null or Infinity for never`)
    : millis
}

/**
 * @since 0.1.0
 * @category validation
 */
export const optionalString = (field: string, input: unknown): string | undefined | ConfigError =>
  input === undefined || typeof input === "string" ? input : invalid(field, `must be a string, got ${show(input)}`)

/**
 * @since 0.1.0
 * @category validation
 */
export const optionalBoolean = (field: string, input: unknown): boolean | undefined | ConfigError =>
  input === undefined || typeof input === "boolean" ? input : invalid(field, `must be a boolean, got ${show(input)}`)

/**
 * A non-negative integer (a count, a limit).
 *
 * @since 0.1.0
 * @category validation
 */
export const optionalCount = (field: string, input: unknown): number | undefined | ConfigError =>
  input === undefined || (typeof input === "number" && Number.isSafeInteger(input) && input >= 0)
    ? input
    : invalid(field, `must be a non-negative integer, got ${show(input)}`)

/**
 * A point in time: a valid `Date` or epoch milliseconds.
 *
 * @since 0.1.0
 * @category validation
 */
export const optionalInstant = (field: string, input: unknown): number | undefined | ConfigError => {
  if (input === undefined) return undefined
  const millis = input instanceof Date ? input.getTime() : typeof input === "number" ? input : Number.NaN
  return Number.isFinite(millis) ? millis : invalid(field, `must be a Date or epoch milliseconds, got ${show(input)}`)
}

/**
 * @since 0.1.0
 * @category validation
 */
export const optionalSchema = (
  field: string,
  input: unknown
): Schema.Schema<any, any, never> | undefined | ConfigError =>
  input === undefined || Schema.isSchema(input)
    ? input as Schema.Schema<any, any, never> | undefined
    : invalid(field, `must be a Schema, got ${show(input)}`)

/**
 * @since 0.1.0
 * @category validation
 */
export const optionalFunction = <F extends (...args: Array<any>) => unknown>(
  field: string,
  input: unknown
): F | undefined | ConfigError =>
  input === undefined || typeof input === "function"
    ? input as F | undefined
    : invalid(field, `must be a function, got ${show(input)}`)

/**
 * A plain object of named values, copied (so a getter that throws fails here, typed, and later
 * reads see a snapshot).
 *
 * @since 0.1.0
 * @category validation
 */
export const record = (field: string, input: unknown): Record<string, unknown> | undefined | ConfigError => {
  if (input === undefined) return undefined
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return invalid(field, `must be an object of named values, got ${show(input)}`)
  }
  try {
    return { ...input }
  } catch (cause) {
    return invalid(field, `could not be read: ${show(cause)}`, cause)
  }
}

/**
 * A non-empty string, as a layer's path or name option must be.
 *
 * @since 0.1.0
 * @category validation
 */
export const nonEmptyString: Check<string> = (field, input) =>
  typeof input === "string" && input.length > 0
    ? input
    : invalid(field, `must be a non-empty string, got ${show(input)}`)

/**
 * A connection URL: a non-empty string, or a `Redacted` one.
 *
 * @since 0.1.0
 * @category validation
 */
export const url: Check<string | Redacted.Redacted<string>> = (field, input) =>
  Redacted.isRedacted(input) ? input as Redacted.Redacted<string> : nonEmptyString(field, input)

/**
 * The layer of checked options, or a layer that fails with the `ConfigError`.
 *
 * @since 0.1.0
 * @category validation
 */
export const layerOf = <A, ROut, E>(
  options: A | ConfigError,
  layer: (options: A) => Layer.Layer<ROut, E>
): Layer.Layer<ROut, E | ConfigError> => options instanceof ConfigError ? Layer.fail(options) : layer(options)

/**
 * Tags of an entry: an array of non-empty strings (duplicates dropped, order kept), or absent.
 *
 * @since 0.1.0
 * @category validation
 */
export const optionalTags = (field: string, input: unknown): ReadonlyArray<string> | undefined | ConfigError => {
  if (input === undefined) return undefined
  if (!Array.isArray(input)) return invalid(field, `must be an array of non-empty strings, got ${show(input)}`)
  for (let i = 0; i < input.length; i++) {
    const tag: unknown = input[i]
    if (typeof tag !== "string" || tag.length === 0) {
      return invalid(`${field}[${i}]`, `must be a non-empty string, got ${show(tag)}`)
    }
  }
  return Array.from(new Set(input as ReadonlyArray<string>))
}
