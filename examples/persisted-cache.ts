/**
 * A PersistedCache from @effect/experimental persisted to cacheness: the lookup runs once, a
 * later process (or run) is answered from disk, and a typed failure comes back as that failure.
 * Run with `tsx examples/persisted-cache.ts [directory]` twice: the second run does no lookup.
 */
import * as PersistedCache from "@effect/experimental/PersistedCache"
import * as Persistence from "@effect/experimental/Persistence"
import { Effect, Exit, Layer, PrimaryKey, Schema } from "effect"
import { Cache, CachePersistence } from "../src/index.js"

class UserNotFound extends Schema.TaggedError<UserNotFound>()("UserNotFound", { id: Schema.Number }) {}
class User extends Schema.Class<User>("User")({ id: Schema.Number, name: Schema.String }) {}

class GetUser extends Schema.TaggedRequest<GetUser>()("GetUser", {
  failure: UserNotFound,
  success: User,
  payload: { id: Schema.Number }
}) {
  [PrimaryKey.symbol]() {
    return `user:${this.id}`
  }
}

let lookups = 0
const program = Effect.gen(function*() {
  const users = yield* PersistedCache.make({
    storeId: "users",
    lookup: (request: GetUser) =>
      Effect.suspend(() => {
        lookups++
        return request.id === 0
          ? Effect.fail(new UserNotFound({ id: 0 }))
          : Effect.succeed(new User({ id: request.id, name: `user ${request.id}` }))
      }),
    timeToLive: (_request, exit) => Exit.isSuccess(exit) ? "1 day" : "1 minute"
  })
  const ada = yield* users.get(new GetUser({ id: 1 }))
  const missing = yield* Effect.flip(users.get(new GetUser({ id: 0 })))
  console.log("user", ada.name)
  console.log("failure", missing._tag)
  console.log("lookups", lookups)
})

const directory = process.argv[2] ?? "./.cacheness-persisted"
const layer = Persistence.layerResult.pipe(
  Layer.provide(CachePersistence.layer()),
  Layer.provide(Cache.layer({ directory }))
)
await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layer)))
