// A child process for the PersistedCache test: a PersistedCache over CachePersistence on the
// cache in <dir>. It looks up <id> and prints one JSON line: the outcome and how many times its
// lookup ran in this process. Even ids succeed, odd ids fail with a typed NotFound.
import * as PersistedCache from "@effect/experimental/PersistedCache"
import * as Persistence from "@effect/experimental/Persistence"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PrimaryKey from "effect/PrimaryKey"
import * as Schema from "effect/Schema"
import * as Cache from "../../src/Cache.js"
import * as CachePersistence from "../../src/CachePersistence.js"

export class NotFound extends Schema.TaggedError<NotFound>()("NotFound", { id: Schema.Number }) {}

export class User extends Schema.Class<User>("User")({ id: Schema.Number, name: Schema.String }) {}

export class GetUser extends Schema.TaggedRequest<GetUser>()("GetUser", {
  failure: NotFound,
  success: User,
  payload: { id: Schema.Number }
}) {
  [PrimaryKey.symbol]() {
    return `user-${this.id}`
  }
}

const [directory, id] = process.argv.slice(2)

let lookups = 0
const program = Effect.gen(function*() {
  const users = yield* PersistedCache.make({
    storeId: "users",
    lookup: (request: GetUser) =>
      Effect.suspend(() => {
        lookups++
        return request.id % 2 === 0
          ? Effect.succeed(new User({ id: request.id, name: `user ${request.id}` }))
          : Effect.fail(new NotFound({ id: request.id }))
      }),
    timeToLive: () => "1 hour"
  })
  const exit = yield* Effect.exit(users.get(new GetUser({ id: Number(id) })))
  const outcome = exit._tag === "Success"
    ? { success: { isUser: exit.value instanceof User, name: exit.value.name } }
    : exit.cause._tag === "Fail"
    ? { failure: { isNotFound: exit.cause.error instanceof NotFound, tag: exit.cause.error._tag } }
    : { defect: String(exit.cause) }
  console.log(JSON.stringify({ ...outcome, lookups }))
})

const layer = Persistence.layerResult.pipe(
  Layer.provide(CachePersistence.layer()),
  Layer.provide(Cache.layer({ directory }))
)
await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(layer)))
