// JSON calls to the HTTP API, with the bearer token kept for this tab.
const TOKEN_KEY = "pyrstmdb.console.token";

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
  updateForgetButton();
}

function updateForgetButton() {
  const button = document.getElementById("forget-token");
  if (button) button.hidden = !token();
}

let pendingPrompt = null;

/** Ask for the token once, however many requests got a 401 meanwhile. */
export function askToken(reason) {
  if (!pendingPrompt) {
    pendingPrompt = showTokenDialog(reason).finally(() => {
      pendingPrompt = null;
    });
  }
  return pendingPrompt;
}

function showTokenDialog(reason) {
  const dialog = document.getElementById("token-dialog");
  const form = document.getElementById("token-form");
  const input = document.getElementById("token-input");
  const error = document.getElementById("token-error");
  error.hidden = !reason;
  error.textContent = reason || "";
  input.value = "";
  return new Promise((resolve) => {
    const submit = (event) => {
      event.preventDefault();
      if (!input.value) return;
      sessionStorage.setItem(TOKEN_KEY, input.value);
      updateForgetButton();
      form.removeEventListener("submit", submit);
      dialog.close();
      resolve();
    };
    form.addEventListener("submit", submit);
    dialog.addEventListener("cancel", (event) => event.preventDefault());
    if (!dialog.open) dialog.showModal();
    input.focus();
  });
}

export function authHeaders(headers = {}) {
  const t = token();
  return t ? { ...headers, Authorization: `Bearer ${t}` } : headers;
}

/** After a 401: the reason to show (none the first time a token is asked for). */
export function unauthorizedReason(code) {
  return token() ? `That token was rejected (${code}); try again.` : "";
}

async function readError(resp) {
  let body = null;
  try {
    body = await resp.json();
  } catch {
    body = null;
  }
  const err = (body && body.error) || {};
  return new ApiError(
    resp.status,
    err.code || `HTTP_${resp.status}`,
    err.message || resp.statusText || "request failed",
    err.details,
  );
}

/** Call the API; a 401 prompts for the token and retries. Throws ApiError. */
export async function api(method, path, body, headers = {}) {
  for (;;) {
    const init = { method, headers: authHeaders({ Accept: "application/json", ...headers }) };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, "NETWORK", `cannot reach the server (${err.message})`);
    }
    if (resp.status === 401) {
      const err = await readError(resp);
      await askToken(unauthorizedReason(err.code));
      continue;
    }
    if (!resp.ok) throw await readError(resp);
    const type = resp.headers.get("Content-Type") || "";
    return type.includes("json") ? resp.json() : resp.text();
  }
}

export const get = (path) => api("GET", path);
export const post = (path, body) => api("POST", path, body ?? {});
export const put = (path, body) => api("PUT", path, body);

export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

updateForgetButton();
