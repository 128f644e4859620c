import * as Effect from "effect/Effect"
import * as HasherXxhash from "../src/layers/HasherXxhash.js"
const run = async (opts: any, label: string) => {
  const h = await Effect.runPromise(HasherXxhash.make(opts))
  const params = { model: "xgboost", dataset: "customer_data", version: "1.0" }
  for (let r = 0; r < 3; r++) {
    const n = 200_000
    const t = performance.now()
    for (let i = 0; i < n; i++) Effect.runSync(h.key(params))
    console.log(label, ((performance.now() - t) * 1000 / n).toFixed(3), "µs/key (incl runSync)")
  }
}
await run({}, "content")
await run({ hashPathContent: false }, "bypath ")
