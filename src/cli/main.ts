#!/usr/bin/env node
/**
 * The `cacheness` command: inspect and maintain a cache directory.
 *
 * ```sh
 * cacheness stats --dir ./my_cache
 * cacheness list --sort size --limit 20
 * cacheness verify --repair
 * ```
 *
 * Exit codes are a contract (see `ExitCode` in `exit.ts`): 0 ok, 1 problems remain, 2 usage,
 * 3 not found, 4 cache error.
 *
 * @since 0.1.0
 */
import * as CliConfig from "@effect/cli/CliConfig"
import * as Command from "@effect/cli/Command"
import * as HelpDoc from "@effect/cli/HelpDoc"
import * as ValidationError from "@effect/cli/ValidationError"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as NodeRuntime from "@effect/platform-node/NodeRuntime"
import * as Cause from "effect/Cause"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Logger from "effect/Logger"
import * as LogLevel from "effect/LogLevel"
import * as fs from "node:fs"
import { get } from "./commands/get.js"
import { inspect } from "./commands/inspect.js"
import { invalidate } from "./commands/invalidate.js"
import { list } from "./commands/list.js"
import { cleanup, clear, prune } from "./commands/maintenance.js"
import { pullThrough } from "./commands/pullThrough.js"
import { stats } from "./commands/stats.js"
import { verify } from "./commands/verify.js"
import { ExitCode, usage } from "./exit.js"
import { escapeLines } from "./format.js"

const version = (): string => {
  try {
    // Two levels up from both src/cli and dist/cli.
    return JSON.parse(fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")).version
  } catch {
    return "unknown"
  }
}

/** Filled in below: the root's help needs the root. */
let rootHelp = (): string => ""

const cacheness = Command.make("cacheness", {}, () =>
  // No command: show what there is, and fail as a usage error so a script notices.
  Effect.zipRight(Console.log(rootHelp()), usage("give a command"))).pipe(
    Command.withDescription(
      "Inspect and maintain a cacheness cache directory. Options such as --dir go after the command."
    ),
    Command.withSubcommands([stats, list, inspect, get, verify, cleanup, prune, clear, pullThrough, invalidate])
  )
rootHelp = () => HelpDoc.toAnsiText(Command.getHelp(cacheness, CliConfig.defaultConfig))

const cli = Command.run(cacheness, { name: "cacheness", version: version() })

// Messages can quote stored text (a key argument, a namespace): escaped, like every output.
const say = (line: string) => Effect.sync(() => process.stderr.write(`${escapeLines(line)}\n`))

/** Colour only on a terminal, and never with `NO_COLOR` set (https://no-color.org). */
const colorOn = (stream: NodeJS.WriteStream) => stream.isTTY === true && (process.env.NO_COLOR ?? "") === ""

// SGR and other CSI sequences, as @effect/cli's help and error docs are rendered.
const ANSI = /\u001b\[[0-9;?]*[A-Za-z]/g
const strip = (args: ReadonlyArray<unknown>) => args.map((a) => (typeof a === "string" ? a.replace(ANSI, "") : a))

/**
 * The console with ANSI styling removed where colour is off: @effect/cli renders help with
 * styles unconditionally. Command output holds no raw escapes (stored text is escaped), so
 * nothing else changes.
 */
const plainConsole = (base: Console.Console): Console.Console => {
  const out = colorOn(process.stdout)
  const err = colorOn(process.stderr)
  return {
    ...base,
    log: (...args) => base.log(...(out ? args : strip(args))),
    info: (...args) => base.info(...(out ? args : strip(args))),
    error: (...args) => base.error(...(err ? args : strip(args))),
    warn: (...args) => base.warn(...(err ? args : strip(args))),
    unsafe: {
      ...base.unsafe,
      log: (...args) => base.unsafe.log(...(out ? args : strip(args))),
      info: (...args) => base.unsafe.info(...(out ? args : strip(args))),
      error: (...args) => base.unsafe.error(...(err ? args : strip(args))),
      warn: (...args) => base.unsafe.warn(...(err ? args : strip(args)))
    }
  }
}

/** Library logs (warnings about broken entries, …) go to stderr, so stdout stays parseable. */
const stderrLogger = Logger.make(({ logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message]).map((m) => (typeof m === "string" ? m : String(m))).join(
    " "
  )
  process.stderr.write(`${logLevel.label.toLowerCase()}: ${escapeLines(text)}\n`)
})

/**
 * Runs the command line `argv` (as `process.argv`) and returns the exit code; every failure is
 * reported on stderr here.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (argv: ReadonlyArray<string>): Effect.Effect<number> =>
  Console.consoleWith((base) => Effect.withConsole(cli(argv), plainConsole(base))).pipe(
    Effect.as<number>(ExitCode.Ok),
    Effect.catchAll((error) => {
      // @effect/cli has already printed what was wrong with the arguments.
      if (ValidationError.isValidationError(error)) return Effect.succeed(ExitCode.Usage)
      switch (error._tag) {
        case "CliExit":
          return Effect.as(
            say(error.code === ExitCode.Problems ? error.message : `error: ${error.message}`),
            error.code
          )
        case "ConfigError":
          return Effect.as(say(`error: ${error.message}`), ExitCode.Usage)
        default:
          return Effect.as(say(`error: ${error.message}`), ExitCode.CacheError)
      }
    }),
    Effect.catchAllDefect((defect) =>
      Effect.as(say(`internal error: ${Cause.pretty(Cause.die(defect))}`), ExitCode.CacheError)
    ),
    Effect.provide(NodeContext.layer),
    Effect.provide(Logger.replace(Logger.defaultLogger, stderrLogger)),
    Logger.withMinimumLogLevel(LogLevel.Warning)
  )

// A reader that closes early (`cacheness list | head`) has what it wanted: exit quietly, 0.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code === "EPIPE") process.exit(ExitCode.Ok)
  process.stderr.write(`error: cannot write stdout: ${error.message}\n`)
  process.exit(ExitCode.CacheError)
})

NodeRuntime.runMain(run(process.argv), {
  disableErrorReporting: true,
  // The runner's pretty logger writes to stdout beside ours (each warning twice, `--json` broken).
  disablePrettyLogger: true,
  teardown: (exit, onExit) => onExit(Exit.isSuccess(exit) ? (exit.value as number) : ExitCode.CacheError)
})
