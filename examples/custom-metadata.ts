/**
 * Custom metadata: the seed's ml_experiments workflow. Each trained model is cached with a typed
 * row (experiment id, model type, accuracy, training time) in a table of its own; the rows are
 * then queried with typed filters and with plain SQL, and go away with their entries.
 * Run: `npx tsx examples/custom-metadata.ts [directory]`
 */
import { Effect, Schema } from "effect"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Cache } from "../src/index.js"

/** The seed's MLExperimentMetadata, declared with a Schema instead of an SQLAlchemy model. */
const MlExperiments = Cache.metadataTable(
  "ml_experiments",
  Schema.Struct({
    experiment_id: Schema.String,
    model_type: Schema.String,
    accuracy: Schema.Number,
    trained_at: Schema.Date
  }),
  { indexes: ["model_type", "accuracy"], unique: ["experiment_id"] }
)

const experiments = [
  { experiment_id: "exp_001", model_type: "xgboost", accuracy: 0.94 },
  { experiment_id: "exp_002", model_type: "random_forest", accuracy: 0.88 },
  { experiment_id: "exp_003", model_type: "xgboost", accuracy: 0.91 },
  { experiment_id: "exp_004", model_type: "logistic", accuracy: 0.79 }
]

const program = Effect.gen(function*() {
  const cache = yield* Cache.Cache
  for (const [i, e] of experiments.entries()) {
    const model = { weights: Float64Array.from({ length: 64 }, (_, j) => Math.sin(i + j)), type: e.model_type }
    yield* cache.put({ experiment: e.experiment_id }, model, {
      description: `${e.model_type} model`,
      metadata: { ml_experiments: { ...e, trained_at: new Date(Date.UTC(2024, 0, 1 + i)) } }
    })
  }

  const good = yield* cache.queryMetadata(MlExperiments, { accuracy: { gte: 0.9 } }, {
    orderBy: "accuracy",
    descending: true
  })
  console.log(
    `accuracy >= 0.9: ${good.map(({ row }) => `${row.experiment_id} (${row.model_type}, ${row.accuracy})`).join(", ")}`
  )

  const sql = yield* cache.sql
  const perType = yield* sql<{ model_type: string; n: number; best: number }>`
    SELECT model_type, count(*) AS n, max(accuracy) AS best FROM ml_experiments GROUP BY model_type ORDER BY model_type`
  console.log(`by type (SQL): ${perType.map((r) => `${r.model_type}=${r.n}/${r.best}`).join(" ")}`)

  // A row that does not match its schema is refused, and nothing is stored.
  const refused = yield* Effect.flip(
    cache.put({ experiment: "exp_bad" }, {}, {
      metadata: { ml_experiments: { experiment_id: "exp_bad", model_type: "svm", accuracy: "high" } }
    })
  )
  console.log(
    `invalid row: ${refused._tag} (${(yield* cache.has({ experiment: "exp_bad" })) ? "stored" : "nothing stored"})`
  )

  // Rows go with their entries.
  yield* cache.invalidate({ experiment: "exp_001" })
  const left = yield* cache.queryMetadata(MlExperiments, {})
  console.log(`after invalidating exp_001: ${left.length} rows`)
})

const directory = process.argv[2] ?? fs.mkdtempSync(path.join(os.tmpdir(), "cacheness-custom-metadata-"))
Effect.runPromise(program.pipe(Effect.provide(Cache.layer({ directory, metadataTables: [MlExperiments] })))).catch(
  (error) => {
    console.error(error)
    process.exit(1)
  }
)
