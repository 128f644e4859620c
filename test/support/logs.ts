import * as Effect from "effect/Effect"
import * as Logger from "effect/Logger"

/** Runs `self` with a logger that collects warning messages (and prints nothing). */
export const captureWarnings = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<{ readonly result: A; readonly warnings: ReadonlyArray<string> }, E, R> =>
  Effect.suspend(() => {
    const warnings: Array<string> = []
    const logger = Logger.make(({ logLevel, message }) => {
      if (logLevel._tag === "Warning") {
        warnings.push((Array.isArray(message) ? message : [message]).map(String).join(" "))
      }
    })
    return Effect.map(
      Effect.provide(self, Logger.replace(Logger.defaultLogger, logger)),
      (result) => ({ result, warnings })
    )
  })
