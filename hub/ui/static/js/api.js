// The hub's REST API as the UI uses it: the token kept in this browser tab's session,
// JSON requests with clear errors, and the live event stream read with fetch (so the
// token travels in a header, never in a URL).

const TOKEN_KEY = "pilothouse.token";
const V1 = "/api/v1";

export class ApiError extends Error {
  /** An answer of the hub that was not a success: its status, code and message. */
  constructor(status, body) {
    const message = (body && body.message) || `the hub answered ${status}`;
    super(message);
    this.status = status;
    this.code = (body && body.error) || "error";
    this.fields = (body && body.fields) || [];
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forget() {
  sessionStorage.removeItem(TOKEN_KEY);
}

let onUnauthorized = () => {};
export function whenUnauthorized(callback) {
  onUnauthorized = callback;
}

/** Check a token against the hub (it must be the admin token) and keep it for this tab. */
export async function login(candidate) {
  const resp = await fetch(`${V1}/prediction-environments?limit=1`, {
    headers: { Authorization: `Bearer ${candidate}` },
  });
  if (resp.status === 401) throw new ApiError(401, { message: "The hub does not know this token." });
  if (resp.status === 403) {
    throw new ApiError(403, {
      message: "This is an agent token: it speaks only for its prediction environment. Log in with the admin token.",
    });
  }
  if (!resp.ok) throw new ApiError(resp.status, await body(resp));
  sessionStorage.setItem(TOKEN_KEY, candidate);
}

export function url(path, query) {
  const out = new URL(V1 + path, location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") out.searchParams.set(key, value);
  }
  return out;
}

/** One API call; JSON in and out. Throws ApiError; a 401 logs out. */
export async function request(method, path, { query, json, signal, raw } = {}) {
  const headers = { Authorization: `Bearer ${token()}` };
  if (json !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(url(path, query), {
    method,
    headers,
    signal,
    body: json === undefined ? undefined : JSON.stringify(json),
  });
  if (resp.status === 401) {
    onUnauthorized();
    throw new ApiError(401, await body(resp));
  }
  if (!resp.ok) throw new ApiError(resp.status, await body(resp));
  if (raw) return resp;
  if (resp.status === 204 || resp.status === 202) return null;
  return resp.json();
}

export const get = (path, query, signal) => request("GET", path, { query, signal });
export const post = (path, json) => request("POST", path, { json });
export const patch = (path, json) => request("PATCH", path, { json });
export const put = (path, json) => request("PUT", path, { json });
export const del = (path) => request("DELETE", path);

/** Every item of a paged list (pages of `limit`), up to `max` items. */
export async function all(path, query = {}, { signal, max = 100000 } = {}) {
  const items = [];
  let cursor;
  do {
    const page = await get(path, { ...query, limit: 1000, cursor }, signal);
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < max);
  return items;
}

async function body(resp) {
  try {
    return await resp.json();
  } catch {
    return null;
  }
}

/**
 * Follow GET /events/stream with `filters`: `onSnapshot(page)` first (newest `backlog`
 * events), then `onEvent(event)` for each new one; `onState("live"|"reconnecting")`.
 * Reconnects with backoff, resuming after the last position seen. Stops on `signal`.
 */
export async function follow(filters, { backlog = 50, onSnapshot, onEvent, onState, signal }) {
  let position = null;
  let delay = 500;
  while (!signal.aborted) {
    try {
      const headers = { Authorization: `Bearer ${token()}`, Accept: "text/event-stream" };
      if (position !== null) headers["Last-Event-ID"] = String(position);
      const resp = await fetch(url("/events/stream", { ...filters, backlog }), { headers, signal });
      if (resp.status === 401) {
        onUnauthorized();
        return;
      }
      if (!resp.ok) throw new ApiError(resp.status, await body(resp));
      onState("live");
      delay = 500;
      for await (const message of messages(resp.body, signal)) {
        if (message.id !== undefined) position = Number(message.id);
        if (message.event === "snapshot") onSnapshot(JSON.parse(message.data));
        else if (message.event === "event") onEvent(JSON.parse(message.data));
      }
    } catch (error) {
      if (signal.aborted) return;
      if (error instanceof ApiError && error.status < 500) throw error;
    }
    if (signal.aborted) return;
    onState("reconnecting");
    await sleep(delay, signal);
    delay = Math.min(delay * 2, 8000);
  }
}

async function* messages(stream, signal) {
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  try {
    while (!signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const message = {};
        for (const line of block.split("\n")) {
          if (!line || line.startsWith(":")) continue;
          const colon = line.indexOf(":");
          const field = line.slice(0, colon);
          const value = line.slice(colon + 1).replace(/^ /, "");
          message[field] = field === "data" && message.data !== undefined ? `${message.data}\n${value}` : value;
        }
        if (message.event || message.data) yield message;
      }
    }
  } finally {
    reader.releaseLock();
  }
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
