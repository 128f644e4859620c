/**
 * Values of the verify-repair stress test, deterministic in (writer, key, version): every fourth
 * version a small string (stored inline), the others 20 KB of incompressible bytes (a blob).
 */
export const valueFor = (writer: number, key: number, version: number): string | Uint8Array => {
  if (version % 4 === 0) return `small ${writer}/${key}/${version}`
  const bytes = new Uint8Array(20_000)
  // xorshift32 seeded by the triple: incompressible, so LZ4 leaves it a blob.
  let x = (writer * 73_856_093) ^ (key * 19_349_663) ^ (version * 83_492_791) ^ 0x9e3779b9
  for (let i = 0; i < bytes.length; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    bytes[i] = x & 0xff
  }
  return bytes
}

/** Whether `got` is exactly the value of (writer, key, version). */
export const isValue = (got: unknown, writer: number, key: number, version: number): boolean => {
  const want = valueFor(writer, key, version)
  if (typeof want === "string") return got === want
  return got instanceof Uint8Array && got.length === want.length &&
    Buffer.compare(Buffer.from(got), Buffer.from(want)) === 0
}
