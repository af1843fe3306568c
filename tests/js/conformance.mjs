// Browser-style check of sessionStateChanged with the graphql-ws client
// (https://github.com/enisdenjo/graphql-ws, createClient + iterate).
// Usage: node conformance.mjs <http base url> <token> <sessionId>
// Prints one JSON line per step: "rejected" (a bad token's close), "connected" (ack), then
// "next" for each result; exits after the second result (the test makes a change in between).
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [baseUrl, token, sessionId] = process.argv.slice(2);
const url = `${baseUrl.replace(/^http/, 'ws')}/graphql`;
const SUBSCRIPTION = `subscription Events($sessionId: ID!) {
  sessionStateChanged(sessionId: $sessionId) { type sessionId state version progress { percentage } }
}`;
const print = (line) => console.log(JSON.stringify(line));

// A bad token: the server must close the socket with 4403 Forbidden.
const rejectedClient = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: 'Bearer not-a-valid-token' },
  retryAttempts: 0,
});
try {
  for await (const result of rejectedClient.iterate({ query: SUBSCRIPTION, variables: { sessionId } })) {
    print({ step: 'unexpected', result });
  }
} catch (closeEvent) {
  print({ step: 'rejected', code: closeEvent.code, reason: closeEvent.reason });
}
await rejectedClient.dispose();

// A good token: ack, then the snapshot, then the change the test makes.
const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { authorization: `Bearer ${token}` },
  retryAttempts: 0,
  on: { connected: (_socket, payload) => print({ step: 'connected', payload: payload ?? null }) },
});
let results = 0;
for await (const result of client.iterate({ query: SUBSCRIPTION, variables: { sessionId } })) {
  print({ step: 'next', result });
  if (++results === 2) break; // leaving the loop sends `complete`
}
await client.dispose();
