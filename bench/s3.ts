/**
 * S3 put/get throughput of a 64 MiB Float64Array through the cache (`cacheness({ blobs: "s3" })`,
 * SQLite metadata), beside a raw @aws-sdk/client-s3 PutObject/GetObject of the same 64 MiB to the
 * same local s3rver, the raw multipart floor (@aws-sdk/lib-storage `Upload` with the part size and
 * queue size the store uses), and the S3 BlobStore alone. The raw client has the store's checksum
 * settings (no default CRC32 of every request: the cache verifies its own XXH64 on read); the
 * "sdk-default" rows are the same raw calls with the SDK's default CRC32 request checksums. MB/s are of the array's 64 MiB, median of
 * `rounds` after a warm-up round. s3rver writes to the local disk, so the figures measure the
 * client side, the loopback and s3rver, not a real object store.
 *
 * `npm run bench -- s3`, or `npx tsx bench/s3.ts [rounds]`.
 */
import { GetObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3"
import { Upload } from "@aws-sdk/lib-storage"
import * as Layer from "effect/Layer"
import * as ManagedRuntime from "effect/ManagedRuntime"
import * as Option from "effect/Option"
import * as fs from "node:fs"
import * as BlobStoreS3 from "../src/blob/s3.js"
import { BlobStore } from "../src/blob/service.js"
import { cacheness } from "../src/index.js"
import { bucket, credentials, startS3 } from "../test/support/s3.js"
import { benchDir, fmt, isMain, table } from "./support.js"

const MiB = 1024 * 1024
const SIZE = 64 * MiB

/** Measurements of a smooth signal with noise: what an array in a cache holds (compresses a little). */
const array = (): Float64Array => {
  const out = new Float64Array(SIZE / 8)
  let x = 0x2545f491
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    out[i] = Math.sin(i / 1000) * 100 + (x & 0xffff) / 65536
  }
  return out
}

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const mbps = (ms: number) => SIZE / MiB / (ms / 1000)

const time = async (f: () => Promise<unknown>) => {
  const start = performance.now()
  await f()
  return performance.now() - start
}

export const run = async (rounds = 5): Promise<void> => {
  const server = await startS3()
  const directory = benchDir("s3")
  const values = array()
  const bytes = new Uint8Array(values.buffer)
  const s3 = { bucket, endpoint: server.endpoint, forcePathStyle: true, credentials: { ...credentials } }
  const clientOptions = {
    endpoint: server.endpoint,
    region: "us-east-1",
    forcePathStyle: true,
    credentials: { ...credentials }
  }
  // The store's checksum settings (src/blob/s3.ts), so the ratio compares like with like.
  const raw = new S3Client({
    ...clientOptions,
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED"
  })
  // The SDK's defaults: a CRC32 of every PutObject / UploadPart body.
  const sdkDefault = new S3Client(clientOptions)
  /** lib-storage with the store's defaults: 16 MiB parts, 4 in flight, parts aborted on failure. */
  const multipart = (client: S3Client, key: string) =>
    new Upload({
      client,
      params: { Bucket: bucket, Key: key, Body: bytes },
      partSize: 16 * MiB,
      queueSize: 4,
      leavePartsOnError: false
    }).done()
  const cache = cacheness({ directory, blobs: "s3", s3: { ...s3, prefix: "cache/" }, maxSize: null })
  const plain = cacheness({
    directory: `${directory}/plain`,
    blobs: "s3",
    s3: { ...s3, prefix: "plain/" },
    maxSize: null,
    compression: { codec: "none", shuffle: false }
  })
  const single = cacheness({
    directory: `${directory}/single`,
    blobs: "s3",
    s3: { ...s3, prefix: "single/", multipartThreshold: "128 MiB" },
    maxSize: null
  })
  const store = ManagedRuntime.make(Layer.fresh(BlobStoreS3.layer({ ...s3, prefix: "store/" })))
  const blobs = await store.runPromise(BlobStore)
  const id = "00000000000000ab-bench"
  const samples: Record<string, Array<number>> = {}
  const add = (name: string, ms: number, round: number) => {
    // Round 0 warms the connections, the JIT and s3rver's directories.
    if (round > 0) (samples[name] ??= []).push(ms)
  }
  try {
    for (let round = 0; round <= rounds; round++) {
      add("cache put", await time(() => cache.put({ bench: "s3" }, values)), round)
      add(
        "cache get",
        await time(async () => {
          const got = await cache.get<Float64Array>({ bench: "s3" })
          if (got?.length !== values.length) throw new Error("short read")
        }),
        round
      )
      add("single put", await time(() => single.put({ bench: "s3" }, values)), round)
      add(
        "single get",
        await time(async () => {
          const got = await single.get<Float64Array>({ bench: "s3" })
          if (got?.length !== values.length) throw new Error("short read")
        }),
        round
      )
      add("plain put", await time(() => plain.put({ bench: "s3" }, values)), round)
      add(
        "plain get",
        await time(async () => {
          const got = await plain.get<Float64Array>({ bench: "s3" })
          if (got?.length !== values.length) throw new Error("short read")
        }),
        round
      )
      add("store put", await time(() => store.runPromise(blobs.put(id, bytes))), round)
      add(
        "store get",
        await time(async () => {
          const got = await store.runPromise(blobs.get(id))
          if (Option.getOrThrow(got).byteLength !== SIZE) throw new Error("short read")
        }),
        round
      )
      add(
        "raw put",
        await time(() =>
          raw.send(new PutObjectCommand({ Bucket: bucket, Key: "raw/blob", Body: bytes, ContentLength: SIZE }))
        ),
        round
      )
      add(
        "raw get",
        await time(async () => {
          const response = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: "raw/blob" }))
          if ((await response.Body!.transformToByteArray()).byteLength !== SIZE) throw new Error("short read")
        }),
        round
      )
      add("raw multipart put", await time(() => multipart(raw, "raw/multipart")), round)
      add(
        "sdk-default put",
        await time(() =>
          sdkDefault.send(
            new PutObjectCommand({ Bucket: bucket, Key: "raw/default", Body: bytes, ContentLength: SIZE })
          )
        ),
        round
      )
      add("sdk-default multipart put", await time(() => multipart(sdkDefault, "raw/default-multipart")), round)
    }
    const stored = (await cache.list())[0]?.storedBytes ?? 0
    const ratio = (base: string, ms: number) => `${fmt(median(samples[base]) / ms, 2)}×`
    const row = (name: string, op: "put" | "get") => {
      const ms = median(samples[`${name} ${op}`])
      return [
        `${name} ${op}`,
        fmt(mbps(ms), 0),
        fmt(ms, 0),
        ratio(`raw ${op}`, ms),
        op === "put" ? ratio("raw multipart put", ms) : ""
      ]
    }
    table(
      `S3: a 64 MiB Float64Array, median of ${rounds} rounds, s3rver on loopback (cache stores it as ${
        fmt(stored / MiB, 1)
      } MiB: byte shuffle + LZ4)`,
      [
        ["operation", "MB/s (of 64 MiB)", "ms", "vs raw client-s3", "vs raw multipart"],
        row("cache", "put"),
        row("cache", "get"),
        row("single", "put"),
        row("single", "get"),
        row("plain", "put"),
        row("plain", "get"),
        row("store", "put"),
        row("store", "get"),
        row("raw", "put"),
        row("raw", "get"),
        row("raw multipart", "put"),
        row("sdk-default", "put"),
        row("sdk-default multipart", "put")
      ]
    )
    console.log(
      "cache = cacheness({ blobs: \"s3\" }) with default compression (multipart above 16 MiB: 4 parts); single = the same with s3.multipartThreshold 128 MiB (one PutObject); plain = the same with codec none; store = BlobStore.layerS3 alone (multipart, 4 × 16 MiB parts); raw = one PutObject / GetObject with the store's checksum settings; raw multipart = lib-storage Upload, 4 × 16 MiB parts, 4 in flight; sdk-default = the raw calls with the SDK's default CRC32 request checksums"
    )
  } finally {
    await cache.close()
    await plain.close()
    await single.close()
    await store.dispose()
    raw.destroy()
    sdkDefault.destroy()
    await server.stop()
    fs.rmSync(directory, { recursive: true, force: true })
  }
}

if (isMain(import.meta.url)) await run(Number(process.argv[2] ?? 5))
