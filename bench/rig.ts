/**
 * The many-machines rig's throughput: 1, 2, 4 and 6 processes (over up to 3 simulated machines)
 * on one PostgreSQL schema and one s3rver bucket, each running the rig's mixed workload
 * (test/support/machineWorker.ts: 30% put, 42% get, 8% invalidate, 5% has, 15% memoised calls;
 * ~45% of values are blobs of 16–140 KB in S3) for `seconds`. Operations per second, in all and
 * per process, and the median get latency. Everything (PostgreSQL, s3rver, the workers) shares
 * this machine's cores, so the curve shows contention on one host, not many hosts.
 *
 * `npm run bench -- rig`, or `npx tsx bench/rig.ts [seconds]`. PostgreSQL from
 * CACHENESS_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/test).
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as PgClient from "@effect/sql-pg/PgClient"
import * as Effect from "effect/Effect"
import * as Redacted from "effect/Redacted"
import * as fs from "node:fs"
import { runRig } from "../test/support/rig.js"
import { startS3 } from "../test/support/s3.js"
import { benchDir, fmt, isMain, percentile, table } from "./support.js"

const pgUrl = process.env.CACHENESS_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test"

const dropSchema = (name: string) =>
  Effect.runPromise(
    Effect.scoped(
      Effect.flatMap(
        PgClient.make({ url: Redacted.make(pgUrl), maxConnections: 1 }),
        (sql) => sql.unsafe(`DROP SCHEMA IF EXISTS "${name}" CASCADE`)
      )
    ).pipe(Effect.provide(Reactivity.layer))
  )

export const run = async (seconds = 8): Promise<void> => {
  const server = await startS3()
  const rows: Array<Array<string>> = [["processes", "machines", "ops/s", "ops/s per process", "get p50 ms", "errors"]]
  try {
    for (const processes of [1, 2, 4, 6]) {
      const root = benchDir(`rig-${processes}`)
      const schema = `rig_bench_${processes}_${Math.random().toString(36).slice(2, 8)}`
      try {
        const workers = await runRig({
          processes,
          machines: Math.min(3, processes),
          keys: 24,
          memoKeys: 40,
          durationMs: seconds * 1000,
          root,
          pgSchema: schema,
          s3Endpoint: server.endpoint,
          s3Prefix: `bench${processes}/`
        })
        const entries = workers.flatMap((w) => w.log).filter((e) => e[0] !== "computed")
        const gets = entries.filter((e) => e[0] === "get").map((e) => (e[3] - e[2]) / 1000)
        const errors = entries.filter((e) => e[0] === "error").length
        const perSecond = entries.length / seconds
        rows.push([
          String(processes),
          String(Math.min(3, processes)),
          fmt(perSecond, 0),
          fmt(perSecond / processes, 0),
          fmt(percentile(gets, 50), 1),
          String(errors)
        ])
      } finally {
        fs.rmSync(root, { recursive: true, force: true })
        await dropSchema(schema)
      }
    }
  } finally {
    await server.stop()
  }
  table(`many-machines rig: PostgreSQL metadata + S3 (s3rver) blobs, ${seconds} s per row`, rows)
}

if (isMain(import.meta.url)) await run(Number(process.argv[2] ?? 8))
