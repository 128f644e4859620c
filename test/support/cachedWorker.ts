// A child process for the cross-process single-flight tests. Every worker memoises the same
// function over one cache directory; a run of the function appends a line to `countFile`.
//   once <dir> <countFile> <startAt>      waits until startAt (epoch ms), calls, prints the result
//   hang <dir> <countFile> <leaseTtl>     calls a function that never returns (to be killed)
//   wait <dir> <countFile> <leaseTtl>     writes <dir>/calling, then calls and prints the result
import * as Effect from "effect/Effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Cache from "../../src/Cache.js"
import { cached, cacheness } from "../../src/index.js"

const [mode, directory, countFile, arg] = process.argv.slice(2)
const ran = () => fs.appendFileSync(countFile, `${process.pid} ${mode}\n`)

if (mode === "once") {
  // The Promise API: 4 of these start at the same instant.
  const cache = cacheness({ directory })
  const expensive = cache.memoize(async (n: number) => {
    ran()
    await new Promise((r) => setTimeout(r, 1_000))
    return { answer: n * 6 }
  }, { name: "expensive" })
  await cache.key({ warm: "up" }) // open the cache before the start signal
  await new Promise((r) => setTimeout(r, Math.max(0, Number(arg) - Date.now())))
  console.log(JSON.stringify(await expensive(7)))
  await cache.close()
} else {
  // The Effect API: a lease holder that hangs, and a process that waits for it.
  const work = cached((n: number) =>
    Effect.gen(function*() {
      ran()
      if (mode === "hang") return yield* Effect.never
      return { answer: n * 6 }
    }), { name: "leased", leaseTtl: Number(arg) })
  const program = Effect.gen(function*() {
    if (mode === "wait") fs.writeFileSync(path.join(directory, "calling"), "")
    return yield* work(7)
  })
  const result = await Effect.runPromise(program.pipe(Effect.provide(Cache.layer({ directory }))))
  console.log(JSON.stringify(result))
}
