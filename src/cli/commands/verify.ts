/**
 * `cacheness verify [--repair]`: checks every entry against its stored bytes and finds orphan
 * blobs. Exits 1 when problems remain that were not repaired.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { CliExit, ExitCode } from "../exit.js"
import { plural, table } from "../format.js"
import * as Progress from "../progress.js"
import { dir, json, printJson, withCache } from "../shared.js"

const repair = Options.boolean("repair").pipe(
  Options.withDescription("Remove what is broken: dangling and mismatched entries, orphan blobs, abandoned temp files.")
)

/**
 * @since 0.1.0
 * @category commands
 */
export const verify = Command.make(
  "verify",
  { dir, json, repair },
  (o) =>
    withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        const bar = Progress.make("verify")
        const report = yield* cache.verify({ repair: o.repair, onProgress: bar.update }).pipe(
          Effect.ensuring(Effect.sync(bar.finish))
        )
        const kinds = [
          ["dangling (blob missing)", report.dangling],
          ["size mismatch", report.sizeMismatches],
          ["checksum mismatch", report.checksumMismatches],
          ["orphan blob", report.orphans],
          ["abandoned temp file", report.staleTempFiles]
        ] as const
        const found = kinds.reduce((n, [, ids]) => n + ids.length, 0)
        const remaining = o.repair ? Math.max(0, found - report.repaired) : found
        if (o.json) {
          yield* printJson({ ...report, problems: found, remaining })
        } else {
          yield* Console.log(
            `checked ${plural(report.checked, "entry", "entries")}: ${
              found === 0 ? "no problems" : plural(found, "problem")
            }`
          )
          if (found > 0) {
            yield* Console.log(
              `\n${
                table(
                  [{ header: "PROBLEM" }, { header: "KEY OR BLOB" }],
                  kinds.flatMap(([kind, ids]) => ids.map((id) => [kind, id]))
                )
              }`
            )
          }
          if (o.repair && report.repaired > 0) yield* Console.log(`\nrepaired ${plural(report.repaired, "problem")}`)
        }
        if (remaining > 0) {
          return yield* new CliExit({
            code: ExitCode.Problems,
            message: `${plural(remaining, "problem")} ${remaining === 1 ? "remains" : "remain"}${
              o.repair ? "" : "; run `cacheness verify --repair` to fix them"
            }`
          })
        }
      }), { readOnly: !o.repair })
).pipe(
  Command.withDescription(
    "Check every entry's stored bytes (size and checksum) and find orphan blobs; exit 1 when problems remain."
  )
)
