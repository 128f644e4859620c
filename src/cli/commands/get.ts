/**
 * `cacheness get KEY --out FILE`: a stored value, written out. Bytes are written as they are,
 * typed arrays as their raw bytes (platform byte order), Arrow tables as an Arrow IPC stream,
 * strings as UTF-8, anything else as JSON.
 *
 * @since 0.1.0
 */
import * as Command from "@effect/cli/Command"
import * as Options from "@effect/cli/Options"
import * as Arrow from "apache-arrow"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import { CliExit, ExitCode, notFound } from "../exit.js"
import { jsonReplacer } from "../format.js"
import { dir, resolveKey, withCache } from "../shared.js"
import { keyArg } from "./inspect.js"

const out = Options.file("out").pipe(
  Options.withAlias("o"),
  Options.withPseudoName("FILE"),
  Options.withDescription("Write the value to this file (default: stdout)."),
  Options.optional
)

const toBytes = (value: unknown): Uint8Array =>
  value instanceof Uint8Array
    ? value
    : ArrayBuffer.isView(value)
    ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
    : value instanceof Arrow.Table
    ? Arrow.tableToIPC(value, "stream")
    : Buffer.from(typeof value === "string" ? value : `${JSON.stringify(value, jsonReplacer, 2) ?? "null"}\n`, "utf8")

/** The reader went away (`cacheness get KEY | head`): it has what it wanted, which is success. */
const isBrokenPipe = (error: unknown) => (error as NodeJS.ErrnoException | null)?.code === "EPIPE"

/**
 * @since 0.1.0
 * @category commands
 */
export const get = Command.make(
  "get",
  { key: keyArg, dir, out },
  (o) =>
    withCache(o.dir, (cache) =>
      Effect.gen(function*() {
        const key = yield* resolveKey(cache, o.key)
        const found = yield* cache.get(key)
        if (Option.isNone(found)) return yield* notFound(`no live entry ${key} (absent, expired or unreadable)`)
        const bytes = toBytes(found.value)
        const failed = (cause: unknown) =>
          new CliExit({
            code: ExitCode.CacheError,
            message: `cannot write ${Option.getOrElse(o.out, () => "stdout")}: ${String(cause)}`
          })
        if (Option.isSome(o.out)) {
          const file = o.out.value
          return yield* Effect.try({ try: () => fs.writeFileSync(file, bytes), catch: failed })
        }
        // Through the stream, not a raw fd write: a pipe may accept only part of a large value at once.
        yield* Effect.async<void, CliExit>((resume) => {
          process.stdout.write(
            bytes,
            (error) => resume(error && !isBrokenPipe(error) ? Effect.fail(failed(error)) : Effect.void)
          )
        })
      }), { readOnly: true })
).pipe(Command.withDescription(
  "Write a stored value to --out FILE or stdout: bytes as-is, typed arrays (Float64Array, …) as their raw bytes in platform byte order, " +
    "Arrow tables as an Arrow IPC stream, strings as UTF-8, other values as JSON."
))
