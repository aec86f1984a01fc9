// The server's contract, as types derived from the generated schema (schema.gen.ts). A path, a
// method, a field or an answer the server drops or renames fails the build here or at its use.
import type { components, paths } from "./schema.gen";

export type Schemas = components["schemas"];
export type TokenResponse = Schemas["TokenResponse"];
export type Credentials = Schemas["Credentials"];
export type Signup = Schemas["Signup"];
export type User = Schemas["User"];
export type Secret = Schemas["Secret"];
export type ErrorBody = Schemas["ErrorBody"];

export type Method = "get" | "post" | "delete";
type Operation<P extends keyof paths, M extends Method> = NonNullable<paths[P][M]>;

/** The paths that have an operation for method `M`. */
export type PathWith<M extends Method> = {
  [P in keyof paths]: [NonNullable<paths[P][M]>] extends [never] ? never : P;
}[keyof paths];

/** The JSON body the operation takes (`undefined` if it takes none). */
export type Body<P extends PathWith<M>, M extends Method> =
  Operation<P, M> extends { requestBody: { content: { "application/json": infer B } } }
    ? B
    : Operation<P, M> extends { requestBody?: { content: { "application/json": infer B } } }
      ? B | undefined
      : undefined;

type Json<R> = R extends { content: { "application/json": infer T } } ? T : void;

/** The JSON of the operation's success answer (200 or 201; `void` for 202/204). */
export type Ok<P extends PathWith<M>, M extends Method> =
  Operation<P, M> extends { responses: infer R }
    ? R extends { 200: infer A }
      ? Json<A>
      : R extends { 201: infer A }
        ? Json<A>
        : void
    : never;
