/**
 * Bodies and parameters of the login and user-admin routes (CONTRACT.md §4), validated by
 * fastify's Ajv like the read API's queries; a failure answers FastAPI's 422.
 */
import Type, { type Static } from 'typebox'
import { MAX_NAME_LENGTH } from './query-schemas.ts'

const NO_NUL = '^[^\u0000]*$'
const username = () => Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH, pattern: NO_NUL })
/** A bound on what is hashed or compared; bcrypt itself reads 72 bytes (see passwords.ts). */
const password = () => Type.String({ minLength: 1, maxLength: 1024 })

/** `POST /login`, as JSON or as a form. */
export const LoginBody = Type.Object({ username: username(), password: password() })
export type LoginBody = Static<typeof LoginBody>

/** `POST /api-admin/users`. */
export const NewUserBody = Type.Object({
  username: username(),
  password: password(),
  is_admin: Type.Optional(Type.Boolean({ default: false })),
})
export type NewUserBody = Static<typeof NewUserBody>

/** `DELETE /api-admin/users/{id}`. */
export const UserIdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: 2_147_483_647 }) })
export type UserIdParams = Static<typeof UserIdParams>
