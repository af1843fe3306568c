// Live progress: the sessionStateChanged subscription over one graphql-ws websocket.

import { type Client, createClient } from "graphql-ws";
import { SESSION_STATE_CHANGED, type SessionEvent } from "./api";

export type LinkStatus = "connecting" | "live" | "reconnecting" | "idle";

export interface Watcher {
  event(event: SessionEvent): void;
  /** The stream ended with an error (the draft is gone, or the token expired). */
  error(message: string, code: string | null): void;
}

/** The server closes the socket with 4403 when the token is missing, invalid or expired. */
const FORBIDDEN_CLOSE = 4403;

export class Live {
  private readonly client: Client;

  constructor(token: string, status: (status: LinkStatus) => void, refused: () => void) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    let connectedOnce = false;
    this.client = createClient({
      url: `${scheme}://${location.host}/graphql`,
      // The token travels in connection_init: a browser cannot set headers on a websocket.
      connectionParams: { Authorization: `Bearer ${token}` },
      lazy: true,
      retryAttempts: 20,
      shouldRetry: (reason) => !(reason instanceof CloseEvent && reason.code === FORBIDDEN_CLOSE),
      on: {
        connecting: () => status(connectedOnce ? "reconnecting" : "connecting"),
        connected: () => {
          connectedOnce = true;
          status("live");
        },
        closed: (reason) => {
          if (reason instanceof CloseEvent && reason.code === FORBIDDEN_CLOSE) refused();
          status("idle");
        },
      },
    });
  }

  /** Follow one session: a SNAPSHOT first, then every change. Returns a function that stops. */
  watch(sessionId: string, watcher: Watcher): () => void {
    return this.client.subscribe<{ sessionStateChanged: SessionEvent }>(
      { query: SESSION_STATE_CHANGED, variables: { sessionId } },
      {
        next: (result) => {
          const error = result.errors?.[0];
          if (error) {
            const code = (error.extensions?.code as string | undefined) ?? null;
            watcher.error(error.message, code);
          } else if (result.data) {
            watcher.event(result.data.sessionStateChanged);
          }
        },
        error: (reason) => {
          if (Array.isArray(reason)) {
            const first = reason[0] as { message?: string; extensions?: { code?: string } } | undefined;
            watcher.error(first?.message ?? "The live updates stopped.", first?.extensions?.code ?? null);
          } else if (reason instanceof CloseEvent) {
            watcher.error(`The live connection closed (${reason.code} ${reason.reason}).`, null);
          } else {
            watcher.error("The live updates stopped.", null);
          }
        },
        complete: () => {},
      },
    );
  }

  dispose(): void {
    void this.client.dispose();
  }
}
