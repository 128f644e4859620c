/**
 * Checks of the arguments of cache operations, so bad input is a `ConfigError` naming the
 * argument — not a defect — whatever the caller passes: a wrong type, a `null`-prototype object a
 * template string cannot print, a Proxy or getter that throws. Each check returns the value or
 * the error (no Effect), so the hot paths pay a branch, not a fiber step.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { ConfigError } from "../services/Cache.js"

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
 * other non-object is an error, and a read that throws is an error.
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
  if (typeof input !== "object") return invalid(method, `options must be an object, got ${show(input)}`)
  const out: Partial<Record<K, unknown>> = {}
  try {
    for (const field of fields) out[field] = (input as Record<K, unknown>)[field]
  } catch (cause) {
    return invalid(method, `options could not be read: ${show(cause)}`, cause)
  }
  return out
}

/**
 * A duration in milliseconds; `null` stays `null` (never), `undefined` stays `undefined`.
 *
 * @since 0.1.0
 * @category validation
 */
export const duration = (field: string, input: unknown): number | null | undefined | ConfigError => {
  if (input === undefined || input === null) return input
  let decoded: Option.Option<Duration.Duration>
  try {
    decoded = Duration.decodeUnknown(input)
  } catch (cause) {
    return invalid(field, `not a duration: ${show(input)}`, cause)
  }
  if (Option.isNone(decoded)) return invalid(field, `not a duration: ${show(input)}`)
  const millis = Duration.toMillis(decoded.value)
  return Number.isNaN(millis) || millis < 0 ? invalid(field, `not a non-negative duration: ${show(input)}`) : millis
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
export const optionalSchema = (field: string, input: unknown): Schema.Schema<any, any, never> | undefined | ConfigError =>
  input === undefined || Schema.isSchema(input) ? input as Schema.Schema<any, any, never> | undefined : invalid(field, `must be a Schema, got ${show(input)}`)

/**
 * @since 0.1.0
 * @category validation
 */
export const optionalFunction = <F extends Function>(field: string, input: unknown): F | undefined | ConfigError =>
  input === undefined || typeof input === "function" ? input as F | undefined : invalid(field, `must be a function, got ${show(input)}`)

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
