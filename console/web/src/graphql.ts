// GraphQL over HTTP: one POST per operation, errors sorted into what the page can act on.

/** An error of the response's top-level `errors` list. */
export interface GraphQLError {
  message: string;
  extensions?: { code?: string; field?: string[]; operationId?: string };
}

/** The token was refused (UNAUTHENTICATED) or its user may not do this (FORBIDDEN). */
export class AuthFailure extends Error {
  constructor(
    message: string,
    readonly code: "UNAUTHENTICATED" | "FORBIDDEN",
  ) {
    super(message);
  }
}

/** The operation failed as a whole: the service or the network is down, or a bug. */
export class RequestFailure extends Error {
  constructor(
    message: string,
    readonly errors: GraphQLError[] = [],
  ) {
    super(message);
  }
}

export interface Response<T> {
  data: T | null;
  errors: GraphQLError[];
}

/** POST one operation to /graphql with the token; auth errors are thrown as AuthFailure. */
export async function execute<T>(
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<Response<T>> {
  let response: globalThis.Response;
  try {
    response = await fetch("/graphql", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        // Plain JSON: every answer, errors included, is a JSON body the page can read.
        Accept: "application/json",
        Authorization: `Bearer ${token}`,
      },
      body: JSON.stringify({ query, variables }),
    });
  } catch {
    throw new RequestFailure("The service cannot be reached: check your connection and retry.");
  }
  let body: { data?: T | null; errors?: GraphQLError[] };
  try {
    body = await response.json();
  } catch {
    throw new RequestFailure(`The service answered HTTP ${response.status} without a result.`);
  }
  const errors = body.errors ?? [];
  for (const error of errors) {
    const code = error.extensions?.code;
    if (code === "UNAUTHENTICATED" || code === "FORBIDDEN") throw new AuthFailure(error.message, code);
  }
  return { data: body.data ?? null, errors };
}

/** Like execute, but any top-level error without a field fails the whole operation. */
export async function data<T>(
  token: string,
  query: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  const result = await execute<T>(token, query, variables);
  if (result.errors.length || result.data === null) {
    throw new RequestFailure(describe(result.errors), result.errors);
  }
  return result.data;
}

/** One sentence for a person, quoting the operation id a support request needs. */
export function describe(errors: GraphQLError[]): string {
  if (!errors.length) return "The service returned no result.";
  return errors
    .map((e) => (e.extensions?.operationId ? `${e.message} (operation ${e.extensions.operationId})` : e.message))
    .join(" ");
}
