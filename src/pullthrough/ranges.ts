/**
 * Interval arithmetic for the pull-through cache, on a grid of steps.
 *
 * Every range value (a time or a number) maps to the index of the step it falls in; intervals are
 * inclusive pairs of step indices. Integers make the arithmetic exact: no float drift in gaps, and
 * calendar months are just another grid.
 *
 * @since 0.1.0
 */
import * as Duration from "effect/Duration"

/**
 * An inclusive run of step indices.
 *
 * @since 0.1.0
 * @category models
 */
export interface Interval {
  readonly lo: number
  readonly hi: number
}

/**
 * How range values map to step indices.
 *
 * @since 0.1.0
 * @category models
 */
export type Grid =
  | { readonly _tag: "Fixed"; readonly size: number; readonly origin: number; readonly decimals: number }
  | { readonly _tag: "Months"; readonly months: number }

/**
 * A step as written by users: a duration (`"1 day"`), calendar months (`"1 month"`, `"3 months"`,
 * `{ months: 3 }`, `"1 year"`), or a number for numeric ranges.
 *
 * @since 0.1.0
 * @category models
 */
export type StepInput =
  | Duration.DurationInput
  | { readonly months: number }
  | `${number} month`
  | `${number} months`
  | `${number} year`
  | `${number} years`

const WEEK = 7 * 24 * 60 * 60 * 1000
// 1970-01-05 was a Monday: weekly buckets start on Mondays, as calendars and markets do.
const FIRST_MONDAY = 4 * 24 * 60 * 60 * 1000

const decimalsOf = (x: number): number => {
  if (Number.isInteger(x)) return 0
  const s = x.toString()
  const e = s.indexOf("e-")
  if (e >= 0) return Math.min(15, Number(s.slice(e + 2)) + (s.split(".")[1]?.split("e")[0]?.length ?? 0))
  return Math.min(15, s.split(".")[1]?.length ?? 0)
}

/**
 * Builds the grid of a range column; `undefined` when the step is not valid for that kind.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeGrid = (kind: "date" | "number", step: unknown, origin?: number): Grid | undefined => {
  if (kind === "number") {
    if (typeof step !== "number" || !Number.isFinite(step) || step <= 0) return undefined
    const o = origin ?? 0
    return { _tag: "Fixed", size: step, origin: o, decimals: Math.max(decimalsOf(step), decimalsOf(o)) }
  }
  if (typeof step === "object" && step !== null && "months" in step) {
    const months = (step as { months: unknown }).months
    return typeof months === "number" && Number.isInteger(months) && months > 0 ? { _tag: "Months", months } : undefined
  }
  if (typeof step === "string") {
    const m = /^\s*(\d+)\s*(month|months|year|years)\s*$/.exec(step)
    if (m) {
      const n = Number(m[1]) * (m[2]!.startsWith("year") ? 12 : 1)
      return n > 0 ? { _tag: "Months", months: n } : undefined
    }
  }
  const decoded = Duration.decodeUnknown(step)
  if (decoded._tag === "None") return undefined
  const size = Duration.toMillis(decoded.value)
  if (!Number.isFinite(size) || size <= 0 || !Number.isInteger(size)) return undefined
  return { _tag: "Fixed", size, origin: origin ?? (size % WEEK === 0 ? FIRST_MONDAY : 0), decimals: 0 }
}

/**
 * The index of the step a value (epoch milliseconds for times) falls in.
 *
 * @since 0.1.0
 * @category grid
 */
export const indexOf = (grid: Grid, value: number): number => {
  if (grid._tag === "Fixed") {
    const q = (value - grid.origin) / grid.size
    // 0.3 / 0.1 is 2.9999999999999996: snap values that sit on a grid line within float noise.
    const r = Math.round(q)
    return Math.abs(q - r) < 1e-9 ? r : Math.floor(q)
  }
  const d = new Date(value)
  const months = (d.getUTCFullYear() - 1970) * 12 + d.getUTCMonth()
  return Math.floor(months / grid.months)
}

/**
 * The first value of a step (epoch milliseconds for times).
 *
 * @since 0.1.0
 * @category grid
 */
export const valueOf = (grid: Grid, index: number): number => {
  if (grid._tag === "Fixed") {
    const v = grid.origin + index * grid.size
    return grid.decimals === 0 ? v : Number(v.toFixed(grid.decimals))
  }
  return Date.UTC(1970, index * grid.months, 1)
}

/**
 * Sorted, disjoint, with touching intervals joined.
 *
 * @since 0.1.0
 * @category intervals
 */
export const normalize = (intervals: ReadonlyArray<Interval>): Array<Interval> => {
  const sorted = intervals.filter((i) => i.lo <= i.hi).sort((a, b) => a.lo - b.lo || a.hi - b.hi)
  const out: Array<Interval> = []
  for (const i of sorted) {
    const last = out[out.length - 1]
    if (last !== undefined && i.lo <= last.hi + 1) {
      if (i.hi > last.hi) out[out.length - 1] = { lo: last.lo, hi: i.hi }
    } else {
      out.push(i)
    }
  }
  return out
}

/**
 * The parts of `requested` that no interval of `covered` contains, in order; interior holes too.
 *
 * @since 0.1.0
 * @category intervals
 */
export const subtract = (requested: Interval, covered: ReadonlyArray<Interval>): Array<Interval> => {
  const gaps: Array<Interval> = []
  let cursor = requested.lo
  for (const c of normalize(covered)) {
    if (c.hi < cursor) continue
    if (c.lo > requested.hi) break
    if (c.lo > cursor) gaps.push({ lo: cursor, hi: c.lo - 1 })
    cursor = c.hi + 1
    if (cursor > requested.hi) break
  }
  if (cursor <= requested.hi) gaps.push({ lo: cursor, hi: requested.hi })
  return gaps
}

/**
 * Joins gaps separated by at most `tolerance` steps: one slightly larger request beats two calls.
 *
 * @since 0.1.0
 * @category intervals
 */
export const mergeNearby = (gaps: ReadonlyArray<Interval>, tolerance: number): Array<Interval> => {
  const out: Array<Interval> = []
  for (const g of normalize(gaps)) {
    const last = out[out.length - 1]
    if (last !== undefined && g.lo - last.hi - 1 <= tolerance) out[out.length - 1] = { lo: last.lo, hi: g.hi }
    else out.push(g)
  }
  return out
}

/**
 * Cuts intervals into pieces of at most `maxSteps` steps (for APIs that cap a request's span).
 *
 * @since 0.1.0
 * @category intervals
 */
export const chunk = (intervals: ReadonlyArray<Interval>, maxSteps: number | undefined): Array<Interval> => {
  if (maxSteps === undefined || !Number.isFinite(maxSteps) || maxSteps < 1) return [...intervals]
  const out: Array<Interval> = []
  for (const i of intervals) {
    for (let lo = i.lo; lo <= i.hi; lo += maxSteps) out.push({ lo, hi: Math.min(i.hi, lo + maxSteps - 1) })
  }
  return out
}

/**
 * The overlap of two intervals, if any.
 *
 * @since 0.1.0
 * @category intervals
 */
export const intersect = (a: Interval, b: Interval): Interval | undefined => {
  const lo = Math.max(a.lo, b.lo)
  const hi = Math.min(a.hi, b.hi)
  return lo <= hi ? { lo, hi } : undefined
}

/**
 * Splits an interval before each cut point (a cut `c` ends a piece at step `c`).
 *
 * @since 0.1.0
 * @category intervals
 */
export const splitAt = (interval: Interval, cuts: ReadonlyArray<number>): Array<Interval> => {
  const out: Array<Interval> = []
  let lo = interval.lo
  for (const c of [...cuts].sort((a, b) => a - b)) {
    if (c >= lo && c < interval.hi) {
      out.push({ lo, hi: c })
      lo = c + 1
    }
  }
  out.push({ lo, hi: interval.hi })
  return out
}

/**
 * TTL as a function of age: the tier with the largest `olderThan` the data has reached applies;
 * younger data gets `recent`. `null` means final (never expires).
 *
 * @since 0.1.0
 * @category ttl
 */
export interface TtlByAge {
  readonly _tag: "TtlByAge"
  readonly recent: Duration.DurationInput | null
  readonly tiers: ReadonlyArray<
    { readonly olderThan: Duration.DurationInput; readonly ttl: Duration.DurationInput | null }
  >
}

/**
 * Declares an age-based TTL policy: `ttlByAge({ recent: "15 minutes", tiers: [{ olderThan: "7 days", ttl: null }] })`.
 *
 * @since 0.1.0
 * @category ttl
 */
export const ttlByAge = (options: Omit<TtlByAge, "_tag">): TtlByAge => ({ _tag: "TtlByAge", ...options })

/**
 * The tiers of a policy as milliseconds, oldest threshold first.
 *
 * @since 0.1.0
 * @category ttl
 */
export const ageTiers = (policy: TtlByAge): Array<{ readonly olderThan: number; readonly ttl: number | null }> =>
  policy.tiers
    .map((t) => ({ olderThan: Duration.toMillis(t.olderThan), ttl: t.ttl === null ? null : Duration.toMillis(t.ttl) }))
    .sort((a, b) => b.olderThan - a.olderThan)

/**
 * The TTL in milliseconds (`null` = never expires) for data of the given age.
 *
 * @since 0.1.0
 * @category ttl
 */
export const ttlForAge = (policy: TtlByAge, ageMillis: number): number | null => {
  for (const tier of ageTiers(policy)) {
    if (ageMillis >= tier.olderThan) return tier.ttl
  }
  return policy.recent === null ? null : Duration.toMillis(policy.recent)
}

/**
 * Where an interval must be cut so each piece falls in one age tier, given the current time.
 * A step's age is counted from its end: a day that is not over yet is "recent".
 *
 * @since 0.1.0
 * @category ttl
 */
export const ageCuts = (grid: Grid, policy: TtlByAge, now: number): Array<number> =>
  ageTiers(policy).map((t) => indexOf(grid, now - t.olderThan) - 1)
