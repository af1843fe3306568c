// Words and numbers as a person reads them.

/** "1 h 52 min", "14 min", "42 s". */
export function duration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min`;
  return `${s} s`;
}

/** 999999.99 -> "999,999.99"; whole numbers without decimals. */
export function number(value: number, decimals = 0): string {
  return value.toLocaleString("en-CA", { minimumFractionDigits: 0, maximumFractionDigits: decimals });
}

/** A local time of day: "14:05". */
export function clock(date: Date): string {
  return date.toLocaleTimeString("en-CA", { hour: "2-digit", minute: "2-digit", hour12: false });
}

export interface TokenClaims {
  sub?: string;
  privilege?: unknown;
  exp?: number;
}

/** The claims of a JWT, read without verifying it (the service verifies); null if unreadable. */
export function tokenClaims(token: string): TokenClaims | null {
  const part = token.split(".")[1];
  if (!part) return null;
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? (claims as TokenClaims) : null;
  } catch {
    return null;
  }
}
