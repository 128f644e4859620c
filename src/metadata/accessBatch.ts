/** Hits of one key since the last flush, and the latest access time. */
export interface Access {
  hits: number
  at: number
}

/** What one flush writes. */
export interface TakenAccesses {
  readonly accesses: ReadonlyMap<string, Access>
  readonly hits: number
  readonly misses: number
  /** Time of the latest miss. */
  readonly missAt: number
}

/**
 * Hits, misses and access times recorded in memory and written by a metadata store in one batch
 * per flush, instead of a write per read. A failed write gives its batch back with `restore`, so
 * no count is lost.
 */
export class AccessBatch {
  private accesses = new Map<string, Access>()
  private hits = 0
  private misses = 0
  private missAt = 0

  get isEmpty(): boolean {
    return this.hits === 0 && this.misses === 0 && this.accesses.size === 0
  }

  /** A hit on `key`, or a miss when `key` is null. */
  record(key: string | null, now: number): void {
    if (key === null) {
      this.misses++
      if (now > this.missAt) this.missAt = now
      return
    }
    this.hits++
    const access = this.accesses.get(key)
    if (access === undefined) this.accesses.set(key, { hits: 1, at: now })
    else {
      access.hits++
      if (now > access.at) access.at = now
    }
  }

  /** Everything recorded so far; the batch starts empty again. */
  take(): TakenAccesses {
    const taken = { accesses: this.accesses, hits: this.hits, misses: this.misses, missAt: this.missAt }
    this.accesses = new Map()
    this.hits = 0
    this.misses = 0
    return taken
  }

  /** Puts back a batch that could not be written, merged with what was recorded since. */
  restore(taken: TakenAccesses): void {
    for (const [key, access] of taken.accesses) {
      const current = this.accesses.get(key)
      this.accesses.set(
        key,
        current === undefined ? access : { hits: current.hits + access.hits, at: Math.max(current.at, access.at) }
      )
    }
    this.hits += taken.hits
    this.misses += taken.misses
    this.missAt = Math.max(this.missAt, taken.missAt)
  }
}
