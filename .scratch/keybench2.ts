import * as Effect from "effect/Effect"
import * as Mine from "../src/layers/HasherXxhash.js"
import * as Main from "../../../main/src/layers/HasherXxhash.js"
const mine = await Effect.runPromise(Mine.make())
const mineBy = await Effect.runPromise(Mine.make({ hashPathContent: false }))
const main = await Effect.runPromise(Main.make as any) as any
const params = { model: "xgboost", dataset: "customer_data", version: "1.0" }
const time = (h: any) => { const n = 200_000; const t = performance.now(); for (let i = 0; i < n; i++) Effect.runSync(h.key(params)); return ((performance.now() - t) * 1000 / n).toFixed(3) }
for (let r = 0; r < 6; r++) console.log("main", time(main), "content", time(mine), "bypath", time(mineBy))
