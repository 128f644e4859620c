/**
 * `cacheness invalidate --tag T [--tag U …]`: removes every entry carrying any of the tags.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Console from "effect/Console"
import * as Effect from "effect/Effect"
import { usage } from "../exit.js"
import { formatCount } from "../format.js"
import { dir, json, printJson, withCache } from "../shared.js"

const tag = Options.text("tag").pipe(
  Options.withDescription("Remove the entries carrying this tag (repeat for several: any of them)."),
  Options.withPseudoName("TAG"),
  Options.repeated
)

/**
 * @since 0.1.0
 * @category commands
 */
export const invalidate = Command.make("invalidate", { dir, json, tag }, (o) =>
  Effect.gen(function*() {
    if (o.tag.length === 0) return yield* usage("give at least one --tag TAG")
    if (o.tag.some((t) => t.length === 0)) return yield* usage("--tag: a tag is a non-empty string")
    yield* withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        const removed = yield* cache.invalidateTags(o.tag)
        if (o.json) return yield* printJson({ removed, tags: o.tag })
        yield* Console.log(
          `removed ${formatCount(removed)} ${removed === 1 ? "entry" : "entries"} tagged ${o.tag.join(", ")}`
        )
      }))
  })).pipe(Command.withDescription("Remove every entry carrying any of the --tag TAGs, with its files."))
