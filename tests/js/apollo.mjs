// Apollo Client 4, as a frontend uses it out of the box (InMemoryCache + HttpLink), through
// the workflow. Usage: node apollo.mjs <http base url> <token> <expired token>
// Prints one JSON line per observation; tests/test_apollo_client.py asserts on them.
import {
  ApolloClient,
  CombinedGraphQLErrors,
  HttpLink,
  InMemoryCache,
  ServerError,
  gql,
} from '@apollo/client';

const [baseUrl, token, expiredToken] = process.argv.slice(2);
const print = (line) => console.log(JSON.stringify(line));

let requests = 0;
const countingFetch = (...args) => {
  requests += 1;
  return fetch(...args);
};

function apollo(bearer) {
  return new ApolloClient({
    link: new HttpLink({
      uri: `${baseUrl}/graphql`,
      headers: { authorization: `Bearer ${bearer}` },
      fetch: countingFetch,
    }),
    cache: new InMemoryCache(),
  });
}

const DRAFT = gql`
  fragment Draft on Session {
    id
    sessionId
    state
    version
    product { productCode generalPrice }
    progress { id percentage canCommit }
  }
`;
const SESSION = gql`
  query Session($sessionId: ID!) { session(sessionId: $sessionId) { ...Draft } }
  ${DRAFT}
`;
const CREATE = gql`
  mutation CreateSession { createSession { session { ...Draft } userErrors { field code } } }
  ${DRAFT}
`;
const ADD = gql`
  mutation AddProduct($sessionId: ID!, $input: ProductInput!) {
    addProduct(sessionId: $sessionId, input: $input) {
      session { ...Draft }
      userErrors { field message code }
    }
  }
  ${DRAFT}
`;
const TARGET = gql`
  mutation ConfigureTarget($sessionId: ID!, $input: AudienceTargetInput!) {
    configureTarget(sessionId: $sessionId, input: $input) {
      session { ...Draft }
      userErrors { field message code }
    }
  }
  ${DRAFT}
`;
const COMMIT = gql`
  mutation Commit($sessionId: ID!) {
    commit(sessionId: $sessionId) { success session { ...Draft } userErrors { code } }
  }
  ${DRAFT}
`;
const MY_SESSIONS = gql`
  query MySessions { mySessions { id state } }
`;

const workshop = {
  productName: 'Advanced OT Workshop 2026',
  productCode: `APOLLO-${Date.now() % 1e9}`,
  productDescription: 'Professional development workshop for OTs.',
  productCategory: 'EVENT',
  productStatus: 'AVAILABLE',
  productGlCode: 'WORKSHOPS_AND_WEBINARS_4475',
  userType: 'OT_OTA',
  generalPrice: 199.99,
  taxes: 13,
  productYear: '2026',
};

function describe(error) {
  if (CombinedGraphQLErrors.is(error)) {
    return {
      kind: 'CombinedGraphQLErrors',
      errors: error.errors.map((e) => ({
        code: e.extensions?.code,
        field: e.extensions?.field ?? null,
        operationId: e.extensions?.operationId ?? null,
        message: e.message,
      })),
    };
  }
  if (ServerError.is(error)) {
    return { kind: 'ServerError', status: error.statusCode, message: error.message };
  }
  return { kind: error?.name ?? typeof error, message: String(error?.message ?? error) };
}

// 1. The cached draft follows each mutation: a watched query of the session sees every
//    change from the mutation payloads alone, without fetching again.
const client = apollo(token);
const created = await client.mutate({ mutation: CREATE });
const sessionId = created.data.createSession.session.sessionId;
const watched = client.watchQuery({ query: SESSION, variables: { sessionId } });
const seen = [];
const subscription = watched.subscribe({
  next: (result) => {
    const session = result.data?.session;
    if (session) seen.push(`${session.state}@${session.version}`);
  },
});
await watched.refetch(); // one fetch, to start from the server's copy
const step = async (name, mutation, variables) => {
  const before = requests;
  const result = await client.mutate({ mutation, variables });
  const payload = Object.values(result.data)[0];
  const cached = client.readQuery({ query: SESSION, variables: { sessionId } })?.session;
  print({
    step: name,
    payload: `${payload.session?.state}@${payload.session?.version}`,
    cached: cached ? `${cached.state}@${cached.version}` : null,
    progress: cached?.progress.percentage ?? null,
    fetches: requests - before,
    userErrors: payload.userErrors,
  });
};
await step('addProduct', ADD, { sessionId, input: workshop });
await step('configureTarget', TARGET, { sessionId, input: { province: ['ONTARIO'] } });
await step('commit', COMMIT, { sessionId });
await new Promise((resolve) => setTimeout(resolve, 50)); // let the watcher deliver
subscription.unsubscribe();
print({ step: 'watched', seen, cacheKey: client.cache.identify({ __typename: 'Session', id: created.data.createSession.session.id }) });

// 2. An expired token reaches the client as a GraphQL error coded UNAUTHENTICATED.
try {
  await apollo(expiredToken).query({ query: MY_SESSIONS });
  print({ step: 'expired', outcome: 'no error' });
} catch (error) {
  print({ step: 'expired', ...describe(error) });
}

// 3. A bad price and a bad enum: two BAD_USER_INPUT errors, each naming its field.
const draft = (await client.mutate({ mutation: CREATE })).data.createSession.session;
try {
  await client.mutate({
    mutation: ADD,
    variables: {
      sessionId: draft.sessionId,
      input: { ...workshop, generalPrice: '12,50', productCategory: 'WORKSHOP' },
    },
  });
  print({ step: 'badInput', outcome: 'no error' });
} catch (error) {
  print({ step: 'badInput', ...describe(error) });
}
