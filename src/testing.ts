/**
 * `cacheness/testing`: the contract suites every shipped backend passes, published so a third
 * party's store or cache is held to the same contract. Written with `@effect/vitest`; call them at
 * the top level of a test file:
 *
 * ```ts
 * import { blobStoreSuite } from "cacheness/testing"
 * blobStoreSuite("my store", MyBlobStore.layer)
 * ```
 *
 * Each test builds the layer it is given afresh, so a layer must start empty when built.
 *
 * @since 0.1.0
 */

/**
 * The BlobStore contract: `blobStoreSuite(name, layer)`.
 *
 * @since 0.1.0
 * @category suites
 */
export { blobStoreSuite } from "./testing/BlobStoreSuite.js"

/**
 * The Cache contract: `cacheSuite(name, layer)` or `cacheSuite(name, (options) => layer)`.
 *
 * @since 0.1.0
 * @category suites
 */
export { cacheSuite, type CacheSuiteOptions } from "./testing/CacheSuite.js"

/**
 * The MetadataStore contract: `metadataStoreSuite(name, layer)`.
 *
 * @since 0.1.0
 * @category suites
 */
export { metadataStoreSuite } from "./testing/MetadataStoreSuite.js"
