/**
 * A synchronous change count for the PostgreSQL metadata store, pushed by the server: triggers on
 * the entries table `NOTIFY cacheness_changes` (payload: the schema) when an entry is inserted,
 * replaced, removed, renewed or the table cleared — by any process on any machine — and one
 * dedicated connection of this process `LISTEN`s and counts them. Writes made by this process
 * count at once, without waiting for their notification.
 *
 * Until the LISTEN is confirmed, and from the moment that connection is lost until it is back,
 * the count is `NotSync`: memory must not be trusted while notifications may be missed. Each
 * (re)connection moves the count, so values held from before are checked again.
 *
 * What it guarantees: a write committed elsewhere is counted as soon as its notification arrives
 * (PostgreSQL sends it at commit; delivery takes a network hop, well under a millisecond on one
 * host), not at the instant of the commit — see docs/MEMORY_TIER.md.
 *
 * @since 0.1.0
 */
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import type * as Scope from "effect/Scope"
import * as PgPool from "../shared/pgClient.js"
import { NotSync } from "../shared/sync.js"
import type { MetadataStore } from "./service.js"
import { WRITES } from "./writes.js"

/**
 * The channel every cacheness schema notifies on; the payload names the schema.
 *
 * @since 0.1.0
 * @category constants
 */
export const CHANNEL = "cacheness_changes"

/**
 * @since 0.1.0
 * @category models
 */
export interface ChangeFeed {
  /** The count, or `NotSync` while the listener is not confirmed. */
  readonly count: () => number | NotSync
  /** Counts a write of this process (called when it completes). */
  readonly bump: () => void
}

/** Reconnection delays after a lost listener, in ms (the last repeats). */
const BACKOFF = [100, 250, 500, 1000, 2000, 5000]

/**
 * How often the listening connection is asked to answer, and how long it may take: a connection
 * that died without a word (a network partition, no RST) is noticed within about their sum, so
 * held values are trusted at most that long after notifications stopped arriving.
 */
const HEARTBEAT_MS = 1000
const HEARTBEAT_TIMEOUT_MS = 2000

/**
 * Opens the listening connection (waiting up to `connectTimeout` ms for the first LISTEN) and
 * keeps it open, reconnecting when it is lost, until the scope closes. Its socket is unref'd: a
 * process that never closes the cache still exits.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly url: Redacted.Redacted<string>
  readonly schema: string
  readonly connectTimeout: number
}): Effect.Effect<ChangeFeed, never, Scope.Scope> =>
  Effect.gen(function*() {
    const Client = yield* Effect.orElseSucceed(PgPool.loadClient, () => null)
    let count = 0
    let ready = false
    let closed = false
    let attempt = 0
    let client: PgPool.ListenClient | undefined
    let retry: ReturnType<typeof setTimeout> | undefined
    let heartbeat: ReturnType<typeof setInterval> | undefined

    const lost = (which: PgPool.ListenClient) => {
      if (client !== which) return
      client = undefined
      ready = false
      count++
      if (heartbeat !== undefined) clearInterval(heartbeat)
      heartbeat = undefined
      which.end().catch(() => {})
      if (closed) return
      retry = setTimeout(() => void connect(), BACKOFF[Math.min(attempt++, BACKOFF.length - 1)])
      retry.unref()
    }

    const connect = async (): Promise<void> => {
      if (closed || Client === null) return
      const next = new Client({
        connectionString: Redacted.value(options.url),
        connectionTimeoutMillis: options.connectTimeout,
        // Named after the schema, so an operator (or a test) can tell the listeners apart.
        application_name: `cacheness-listen:${options.schema}`,
        keepAlive: true
      })
      client = next
      next.on("error", () => lost(next))
      next.on("end", () => lost(next))
      next.on("notification", (message) => {
        if (message.channel === CHANNEL && message.payload === options.schema) count++
      })
      try {
        await next.connect()
        next.unref()
        await next.query(`LISTEN ${CHANNEL}`)
        if (client !== next || closed) return
        // Anything written before the LISTEN took effect went unheard: held values are checked again.
        count++
        ready = true
        attempt = 0
        let waiting = false
        heartbeat = setInterval(() => {
          if (waiting || client !== next) return
          waiting = true
          const timeout = setTimeout(() => lost(next), HEARTBEAT_TIMEOUT_MS)
          timeout.unref()
          next.query("SELECT 1").then(
            () => {
              clearTimeout(timeout)
              waiting = false
            },
            () => {
              clearTimeout(timeout)
              lost(next)
            }
          )
        }, HEARTBEAT_MS)
        heartbeat.unref()
      } catch {
        lost(next)
      }
    }

    yield* Effect.addFinalizer(() =>
      Effect.promise(async () => {
        closed = true
        ready = false
        if (retry !== undefined) clearTimeout(retry)
        if (heartbeat !== undefined) clearInterval(heartbeat)
        const open = client
        client = undefined
        if (open !== undefined) await open.end().catch(() => {})
      }).pipe(Effect.timeoutOption(1000))
    )
    yield* Effect.promise(connect).pipe(Effect.timeoutOption(options.connectTimeout))
    return {
      count: () => ready ? count : NotSync,
      bump: () => {
        count++
      }
    }
  })

/**
 * The store with `changeCount` from the feed and this process's writes counted.
 *
 * @since 0.1.0
 * @category constructors
 */
export const attach = (store: MetadataStore.Service, feed: ChangeFeed): MetadataStore.Service => {
  const after = Effect.sync(feed.bump)
  const counted: Record<string, unknown> = {
    ...store,
    clear: Effect.ensuring(store.clear, after),
    changeCount: feed.count
  }
  // The store's writes: each counts once it completes (failed or not: it may have committed).
  for (const name of WRITES) {
    const write = store[name] as (...args: ReadonlyArray<unknown>) => Effect.Effect<unknown, unknown>
    counted[name] = (...args: ReadonlyArray<unknown>) => Effect.ensuring(write(...args), after)
  }
  return counted as unknown as MetadataStore.Service
}
