// Starts GraphiQL from the service's own copies of its assets (web/graphiql.py): a file, not
// an inline script, so that the page works offline and under a strict Content-Security-Policy.
(function () {
  "use strict";
  const endpoint = new URL(document.body.dataset.endpoint, window.location.href);
  const subscriptionUrl = new URL(endpoint);
  subscriptionUrl.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  // Headers typed in the Headers tab go with every request, and in the websocket's
  // connection_init payload for subscriptions (where the service reads the token).
  const fetcher = GraphiQL.createFetcher({
    url: endpoint.toString(),
    subscriptionUrl: subscriptionUrl.toString(),
  });

  const defaultQuery = [
    "# Product orchestrator. Paste the header that",
    "# `orchestrator dev` printed into the Headers tab:",
    "#   {\"Authorization\": \"Bearer eyJ...\"}",
    "# then run this, or the README's examples as pasted.",
    "",
    "mutation CreateSession {",
    "  createSession {",
    "    session { id sessionId state expiresAt }",
    "    userErrors { field message code }",
    "    operationId",
    "  }",
    "}",
    "",
  ].join("\n");

  ReactDOM.createRoot(document.getElementById("graphiql")).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      defaultQuery: defaultQuery,
      defaultEditorToolsVisibility: true,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
    }),
  );
})();
