/**
 * Deep equality that sees Effect data types. chai's `deep-eql` compares iterables by what they
 * yield, and an Effect `Option` or `Either` yields one opaque wrapper (the `yield*` protocol) — so
 * `assert.deepStrictEqual(Option.none(), Option.some(1))` passes. Here `eql` (behind
 * `assert.deepStrictEqual`/`deepEqual` and `expect().eql`) first turns every Option, Either and
 * Exit inside the compared values into plain `{ _tag, value }` objects.
 */
import * as Cause from "effect/Cause"
import * as Chunk from "effect/Chunk"
import * as Either from "effect/Either"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { chai } from "vitest"

const plain = (value: unknown, seen: WeakMap<object, unknown>): unknown => {
  if (typeof value !== "object" || value === null) return value
  if (seen.has(value)) return seen.get(value)
  if (Option.isOption(value)) {
    return Option.isSome(value) ? { _tag: "Some", value: plain(value.value, seen) } : { _tag: "None" }
  }
  if (Either.isEither(value)) {
    return Either.isRight(value)
      ? { _tag: "Right", right: plain(value.right, seen) }
      : { _tag: "Left", left: plain(value.left, seen) }
  }
  if (Exit.isExit(value)) {
    if (Exit.isSuccess(value)) return { _tag: "Success", value: plain(value.value, seen) }
    const cause = value.cause
    return {
      _tag: "Failure",
      failures: plain(Chunk.toArray(Cause.failures(cause)), seen),
      defects: plain(Chunk.toArray(Cause.defects(cause)), seen),
      interrupted: Cause.isInterrupted(cause)
    }
  }
  if (Array.isArray(value)) {
    const out: Array<unknown> = []
    seen.set(value, out)
    for (const item of value) out.push(plain(item, seen))
    return out
  }
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  const out: Record<string, unknown> = {}
  seen.set(value, out)
  for (const [k, v] of Object.entries(value)) out[k] = plain(v, seen)
  return out
}

chai.use((_chai, utils) => {
  for (const name of ["eql", "eqls"]) {
    _chai.Assertion.overwriteMethod(
      name,
      (original) =>
        function(this: Chai.AssertionStatic, expected: unknown, ...rest: Array<unknown>) {
          utils.flag(this, "object", plain(utils.flag(this, "object"), new WeakMap()))
          return original.call(this, plain(expected, new WeakMap()), ...rest)
        }
    )
  }
})
