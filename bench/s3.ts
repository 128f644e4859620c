// S3 put/get throughput of a 64 MiB Uint8Array: through the S3 BlobStore, and as a raw
// @aws-sdk/client-s3 PutObject/GetObject of the same bytes to the same local s3rver. Not run in CI:
// `npx tsx bench/s3.ts [rounds]`. s3rver writes to the local disk, so the figures measure the client
// side and the loopback, not a real object store.
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as BlobStoreS3 from "../src/blob/s3.js"
import { BlobStore } from "../src/blob/service.js"
import { bucket, credentials, startS3 } from "../test/support/s3.js"

const MiB = 1024 * 1024
const SIZE = 64 * MiB
const rounds = Number(process.argv[2] ?? 5)

const bytes = new Uint8Array(SIZE)
for (let i = 0; i < SIZE; i += 4096) bytes[i] = (i >> 12) & 0xff

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const mbps = (ms: number) => SIZE / MiB / (ms / 1000)

const time = async (f: () => Promise<unknown>) => {
  const start = performance.now()
  await f()
  return performance.now() - start
}

const server = await startS3()
try {
  const raw = new S3Client({
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { ...credentials }
  })
  const layer = (multipartThreshold?: number) =>
    Layer.fresh(BlobStoreS3.layer({
      bucket,
      prefix: "bench/",
      endpoint: server.endpoint,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { ...credentials },
      multipartThreshold
    }))
  // The default threshold (16 MiB) sends 64 MiB as 4 parts; one above the size sends one PutObject.
  const runtime = ManagedRuntime.make(layer())
  const store = await runtime.runPromise(BlobStore)
  const single = ManagedRuntime.make(layer(SIZE + 1))
  const singleStore = await single.runPromise(BlobStore)
  const id = "00000000000000ab-bench"

  const results = {
    storePut: [] as Array<number>,
    singlePut: [] as Array<number>,
    storeGet: [] as Array<number>,
    rawPut: [] as Array<number>,
    rawGet: [] as Array<number>
  }
  for (let round = 0; round <= rounds; round++) {
    const storePut = await time(() => runtime.runPromise(store.put(id, bytes)))
    const singlePut = await time(() => single.runPromise(singleStore.put(id, bytes)))
    const storeGet = await time(async () => {
      const got = await runtime.runPromise(store.get(id))
      if (Option.getOrThrow(got).byteLength !== SIZE) throw new Error("short read")
    })
    const rawPut = await time(() => raw.send(new PutObjectCommand({ Bucket: bucket, Key: "raw/blob", Body: bytes })))
    const rawGet = await time(async () => {
      const response = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: "raw/blob" }))
      if ((await response.Body!.transformToByteArray()).byteLength !== SIZE) throw new Error("short read")
    })
    // Round 0 warms the connections, the JIT and s3rver's directories.
    if (round === 0) continue
    results.storePut.push(storePut)
    results.singlePut.push(singlePut)
    results.storeGet.push(storeGet)
    results.rawPut.push(rawPut)
    results.rawGet.push(rawGet)
  }

  const row = (name: string, store: Array<number>, raw: Array<number>) =>
    `| ${name} | ${mbps(median(store)).toFixed(0)} | ${mbps(median(raw)).toFixed(0)} | ${
      (median(raw) / median(store)).toFixed(2)
    }× |`
  console.log(`64 MiB, median of ${rounds} rounds, s3rver on loopback`)
  console.log("| op | BlobStoreS3 MB/s | raw client-s3 MB/s | store / raw |")
  console.log("|---|---:|---:|---:|")
  console.log(row("put (multipart, 4 × 16 MiB)", results.storePut, results.rawPut))
  console.log(row("put (one PutObject)", results.singlePut, results.rawPut))
  console.log(row("get", results.storeGet, results.rawGet))

  await runtime.dispose()
  await single.dispose()
  raw.destroy()
} finally {
  await server.stop()
}
