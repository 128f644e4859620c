/**
 * Checks logged operations on shared keys against the semantics of a register per key: a read
 * may return only the state left by a mutation (put or invalidate) that had begun before the read
 * ended and was not certainly replaced before the read began. Overlapping mutations may apply in
 * either order, so each of them is allowed.
 */

/** One logged operation: [op, key, start, end, result]; times on one clock shared by all processes. */
export type Entry = [op: string, key: number, start: number, end: number, result: string]

/** A put ("w:seq") or an invalidate ("-") of one key. */
export interface Mutation {
  readonly start: number
  readonly end: number
  readonly state: string
  /** The earliest end of a mutation that began after this one ended: from then on it is certainly replaced. */
  supersededAt: number
}

/** The mutations of each key, with `supersededAt` computed. */
export const mutationsByKey = (entries: ReadonlyArray<Entry>, keys: number): Array<Array<Mutation>> => {
  const byKey = Array.from({ length: keys }, () => [] as Array<Mutation>)
  for (const [op, key, start, end, result] of entries) {
    if (op === "put") byKey[key].push({ start, end, state: result, supersededAt: Infinity })
    else if (op === "invalidate") byKey[key].push({ start, end, state: "-", supersededAt: Infinity })
  }
  for (const mutations of byKey) {
    for (const m of mutations) {
      for (const later of mutations) if (later.start > m.end && later.end < m.supersededAt) m.supersededAt = later.end
    }
  }
  return byKey
}

/**
 * The states a read over [start, end] may observe: every mutation that began before the read
 * ended and was not certainly replaced before it began, plus "nothing yet" ("-") while no mutation
 * had certainly finished.
 */
export const allowed = (mutations: ReadonlyArray<Mutation>, start: number, end: number): Set<string> => {
  const states = new Set<string>()
  let anyFinished = false
  for (const m of mutations) {
    if (m.end < start) anyFinished = true
    if (m.start < end && m.supersededAt >= start) states.add(m.state)
  }
  if (!anyFinished) states.add("-")
  return states
}
