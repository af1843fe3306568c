// The operations the console sends, and the shapes it reads back (see schema.graphql).

import { data, describe, execute, type GraphQLError, RequestFailure } from "./graphql";

export type FieldType = "TEXT" | "URL" | "CHOICE" | "MONEY" | "PERCENT" | "INTEGER" | "DATE" | "BOOLEAN";

export interface CatalogChoice {
  name: string;
  label: string;
  value: number;
}

export interface CatalogField {
  name: string;
  label: string;
  help: string;
  required: boolean;
  type: FieldType;
  multiple: boolean;
  minLength: number | null;
  maxLength: number | null;
  minValue: number | null;
  maxValue: number | null;
  decimals: number | null;
  maxSelections: number | null;
  choices: CatalogChoice[];
}

export interface CatalogInput {
  fields: CatalogField[];
  rules: { fields: string[]; description: string }[];
}

export interface Catalog {
  product: CatalogInput;
  audienceTarget: CatalogInput;
}

export type SessionState = "INITIATED" | "PRODUCT_ADDED" | "TARGET_CONFIGURED" | "COMMITTING" | "COMMITTED" | "FAILED";

export interface Progress {
  state: SessionState;
  version: number;
  percentage: number;
  canCommit: boolean;
  errors: string[];
  secondsRemaining: number;
  expiringSoon: boolean;
  steps: { productAdded: boolean; targetConfigured: boolean; committed: boolean };
}

export type Values = Record<string, unknown>;

export interface Session {
  sessionId: string;
  version: number;
  state: SessionState;
  createdAt: string;
  expiresAt: string;
  errors: string[];
  productGuid: string | null;
  targetGuid: string | null;
  product: Values | null;
  audienceTarget: Record<string, string[] | null> | null;
  progress: Progress;
}

export interface DraftSummary {
  sessionId: string;
  state: SessionState;
  createdAt: string;
  product: { productName: string | null; productCode: string | null } | null;
}

export interface UserError {
  field: string[] | null;
  message: string;
  code: string;
}

export type EventType =
  | "SNAPSHOT"
  | "PRODUCT_ADDED"
  | "PRODUCT_UPDATED"
  | "TARGET_CONFIGURED"
  | "COMMIT_STARTED"
  | "COMMIT_RETRYING"
  | "COMMITTED"
  | "FAILED"
  | "CANCELLED"
  | "EXPIRING_SOON"
  | "EXPIRED";

export interface SessionEvent {
  type: EventType;
  sessionId: string;
  state: SessionState;
  version: number;
  occurredAt: string;
  attempt: number | null;
  cause: string | null;
  retryAt: string | null;
  recovering: boolean | null;
  productGuid: string | null;
  targetGuid: string | null;
  productCode: string | null;
  errors: string[];
  progress: Progress;
}

export interface CommitResult {
  success: boolean;
  productGuid: string | null;
  targetGuid: string | null;
  productCode: string | null;
  errors: string[];
  userErrors: UserError[];
}

/** A mutation's outcome: the session after it, or why nothing changed. */
export interface Saved {
  session: Session | null;
  userErrors: UserError[];
  inputErrors: GraphQLError[];
}

const FIELD = `name label help required type multiple minLength maxLength minValue maxValue
  decimals maxSelections choices { name label value }`;

export const CATALOG = `query Catalog {
  catalog {
    product { fields { ${FIELD} } rules { fields description } }
    audienceTarget { fields { ${FIELD} } rules { fields description } }
  }
}`;

const PROGRESS = `progress { state version percentage canCommit errors secondsRemaining expiringSoon
  steps { productAdded targetConfigured committed } }`;

export const MY_SESSIONS = `query MySessions {
  mySessions { sessionId state createdAt product { productName productCode } }
}`;

export const SESSION_STATE_CHANGED = `subscription SessionStateChanged($sessionId: ID!) {
  sessionStateChanged(sessionId: $sessionId) {
    type sessionId state version occurredAt attempt cause retryAt recovering
    productGuid targetGuid productCode errors ${PROGRESS}
  }
}`;

export const COMMIT = `mutation Commit($sessionId: ID!) {
  commit(sessionId: $sessionId) {
    success productGuid targetGuid productCode errors userErrors { field message code }
  }
}`;

export const CANCEL_SESSION = `mutation CancelSession($sessionId: ID!) {
  cancelSession(sessionId: $sessionId) { cancelled userErrors { field message code } }
}`;

/** The operations, for one token and the field lists of one catalogue. */
export class Api {
  private readonly sessionFields: string;

  constructor(
    readonly token: string,
    catalog: Catalog,
  ) {
    // Ask for every field the forms show: the selection comes from the catalogue too.
    const product = catalog.product.fields.map((f) => f.name).join(" ");
    const target = catalog.audienceTarget.fields.map((f) => f.name).join(" ");
    this.sessionFields = `sessionId version state createdAt expiresAt errors productGuid targetGuid
      product { ${product} } audienceTarget { ${target} } ${PROGRESS}`;
  }

  static async catalog(token: string): Promise<Catalog> {
    return (await data<{ catalog: Catalog }>(token, CATALOG)).catalog;
  }

  async mySessions(): Promise<DraftSummary[]> {
    return (await data<{ mySessions: DraftSummary[] }>(this.token, MY_SESSIONS)).mySessions;
  }

  /** The whole draft, or null when it no longer exists (expired, cancelled, committed). */
  async session(sessionId: string): Promise<Session | null> {
    const query = `query Session($sessionId: ID!) { session(sessionId: $sessionId) { ${this.sessionFields} } }`;
    const result = await execute<{ session: Session | null }>(this.token, query, { sessionId });
    if (result.errors.some((e) => e.extensions?.code === "SESSION_NOT_FOUND")) return null;
    return checked(result).session;
  }

  async createSession(): Promise<Saved> {
    const query = `mutation CreateSession {
      createSession { session { ${this.sessionFields} } userErrors { field message code } }
    }`;
    return this.saved("createSession", await execute(this.token, query));
  }

  async addProduct(sessionId: string, input: Values, expectedVersion: number): Promise<Saved> {
    const query = `mutation AddProduct($sessionId: ID!, $input: ProductInput!, $expectedVersion: Int) {
      addProduct(sessionId: $sessionId, input: $input, expectedVersion: $expectedVersion) {
        session { ${this.sessionFields} } userErrors { field message code }
      }
    }`;
    return this.saved("addProduct", await execute(this.token, query, { sessionId, input, expectedVersion }));
  }

  async configureTarget(sessionId: string, input: Values, expectedVersion: number): Promise<Saved> {
    const query = `mutation ConfigureTarget($sessionId: ID!, $input: AudienceTargetInput!, $expectedVersion: Int) {
      configureTarget(sessionId: $sessionId, input: $input, expectedVersion: $expectedVersion) {
        session { ${this.sessionFields} } userErrors { field message code }
      }
    }`;
    return this.saved("configureTarget", await execute(this.token, query, { sessionId, input, expectedVersion }));
  }

  async commit(sessionId: string): Promise<CommitResult> {
    return (await data<{ commit: CommitResult }>(this.token, COMMIT, { sessionId })).commit;
  }

  async cancelSession(sessionId: string): Promise<{ cancelled: boolean; userErrors: UserError[] }> {
    type Result = { cancelSession: { cancelled: boolean; userErrors: UserError[] } };
    return (await data<Result>(this.token, CANCEL_SESSION, { sessionId })).cancelSession;
  }

  private saved(name: string, result: { data: unknown; errors: GraphQLError[] }): Saved {
    // Input errors (a value of the wrong type) name their field in extensions.field: a form
    // shows them where rule errors go. Anything else fails the operation as a whole.
    const inputErrors = result.errors.filter((e) => e.extensions?.field);
    const others = result.errors.filter((e) => !e.extensions?.field);
    if (others.length) throw new RequestFailure(describe(others), others);
    if (inputErrors.length) return { session: null, userErrors: [], inputErrors };
    const payload = (result.data as Record<string, { session: Session | null; userErrors: UserError[] }>)[name];
    return { session: payload.session, userErrors: payload.userErrors, inputErrors: [] };
  }
}

function checked<T>(result: { data: T | null; errors: GraphQLError[] }): T {
  if (result.errors.length || result.data === null) {
    throw new RequestFailure(describe(result.errors), result.errors);
  }
  return result.data;
}
