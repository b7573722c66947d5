// Requests to our JSON API with one error shape: an ApiError whose `messages` come from FastAPI's
// {"detail": [{"loc": [...], "msg": "field: what is wrong"}]} (or a plain string detail).
export class ApiError extends Error {
  constructor(status, messages) {
    super(messages.join("; "));
    this.status = status;
    this.messages = messages;
  }
}

function messagesOf(status, body) {
  const detail = body && body.detail;
  if (Array.isArray(detail)) return detail.map((d) => d.msg || JSON.stringify(d));
  if (typeof detail === "string") return [detail];
  return [`The server answered ${status}.`];
}

async function parse(response) {
  const type = response.headers.get("content-type") || "";
  const body = type.includes("json") ? await response.json().catch(() => null) : null;
  if (!response.ok) {
    const retry = response.headers.get("retry-after");
    const messages = messagesOf(response.status, body);
    if (retry) messages.push(`Try again in ${retry} s.`);
    throw new ApiError(response.status, messages);
  }
  return body;
}

// fetch, with a network failure as an ApiError (an abort stays an AbortError)
async function reach(url, init) {
  try {
    return await fetch(url, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, ["The server cannot be reached."]);
  }
}

async function send(url, init) {
  return parse(await reach(url, init));
}

function postInit(body, signal) {
  return { method: "POST", signal, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
}

/** GET a JSON answer. */
export function getJSON(url, { signal } = {}) {
  return send(url, { headers: { Accept: "application/json" }, signal });
}

/** POST a JSON body and get the JSON answer. */
export function postJSON(url, body, { signal } = {}) {
  return send(url, {
    method: "POST", signal,
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(body),
  });
}

/** POST a JSON body and get a file back: {blob, filename} (the filename from Content-Disposition). */
export async function postBlob(url, body, { signal } = {}) {
  const response = await reach(url, postInit(body, signal));
  if (!response.ok) return parse(response);
  const match = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "");
  return { blob: await response.blob(), filename: match ? match[1] : "download" };
}

/** POST and read a newline-delimited JSON stream, calling onEvent for each line as it arrives. */
export async function postStream(url, body, onEvent, { signal } = {}) {
  const response = await reach(url, postInit(body, signal));
  if (!response.ok) return parse(response);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let nl;
    while ((nl = buffer.indexOf("\n")) >= 0) {
      const line = buffer.slice(0, nl).trim();
      buffer = buffer.slice(nl + 1);
      if (line) onEvent(JSON.parse(line));
    }
  }
  if (buffer.trim()) onEvent(JSON.parse(buffer));
}

/** Show an error in an element (text only: messages may echo user input). */
export function showError(el, err) {
  if (!el) return;
  el.hidden = false;
  el.textContent = err instanceof ApiError ? err.messages.join(" ") : String(err.message || err);
}
