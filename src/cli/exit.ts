/**
 * Exit codes of the `cacheness` command — a contract scripts rely on — and the failure that
 * carries one.
 *
 * @since 0.1.0
 */
import * as Data from "effect/Data"

/**
 * | code | meaning |
 * |---|---|
 * | 0 | success |
 * | 1 | problems found and not repaired (`verify`) |
 * | 2 | usage: invalid arguments or options, a refused `clear` |
 * | 3 | not found: no cache at `--dir`, no entry with that key, no pull-through database |
 * | 4 | the cache could not be read or written (storage, metadata or codec error) |
 *
 * @since 0.1.0
 * @category constants
 */
export const ExitCode = {
  Ok: 0,
  Problems: 1,
  Usage: 2,
  NotFound: 3,
  CacheError: 4
} as const

/**
 * @since 0.1.0
 * @category models
 */
export type ExitCode = typeof ExitCode[keyof typeof ExitCode]

/**
 * Ends the command with `code`, printing `message` to stderr.
 *
 * @since 0.1.0
 * @category errors
 */
export class CliExit extends Data.TaggedError("CliExit")<{
  readonly code: ExitCode
  readonly message: string
}> {}

/**
 * @since 0.1.0
 * @category constructors
 */
export const usage = (message: string): CliExit => new CliExit({ code: ExitCode.Usage, message })

/**
 * @since 0.1.0
 * @category constructors
 */
export const notFound = (message: string): CliExit => new CliExit({ code: ExitCode.NotFound, message })
