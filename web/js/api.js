// @ts-check
/**
 * Calls to the server's REST API (`/api/v1`, described by
 * `/api/v1/openapi.json`) from the sign-in, setup and admin pages.
 *
 * Browsers are signed in by an HttpOnly session cookie; every request that
 * changes something also carries the session's CSRF token in `X-CSRF-Token`.
 *
 * @module
 */

/**
 * One field the server refused, and the rule it broke.
 * @typedef {object} FieldProblem
 * @property {string} field  a path such as `max_members`, `servers[5]` or `servers[0].urls[0]`
 * @property {string} rule   e.g. `range`, `max_items`, `scheme`, `bind`
 * @property {string} message for people
 */

/**
 * A user account, as the API shows it.
 * @typedef {object} User
 * @property {number} id
 * @property {string} login         `name@domain`
 * @property {string} domain
 * @property {string} display_name
 * @property {'admin' | 'user'} role
 * @property {boolean} disabled
 * @property {number} created_at    Unix seconds
 */

/**
 * The answer of GET /api/v1/session, POST /api/v1/login and POST /api/v1/setup.
 * @typedef {object} SessionInfo
 * @property {User} user
 * @property {string | null} csrf_token
 */

/** An answer other than 2xx, or no answer at all (`status` 0). */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {FieldProblem[]} [fields]
   * @param {number | null} [retryAfter] seconds, from `Retry-After`
   */
  constructor(status, code, message, fields = [], retryAfter = null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.fields = fields;
    this.retryAfter = retryAfter;
  }
}

/** @type {string | null} */
let csrfToken = null;

/** @type {((error: ApiError) => void) | null} */
let unauthorizedHandler = null;

/**
 * Keeps the session's CSRF token, sent with every request that changes something.
 * @param {string | null} token
 */
export function setCsrfToken(token) {
  csrfToken = token;
}

/**
 * Called (before the promise rejects) when a request answers 401: the
 * session ended or was never there.
 * @param {((error: ApiError) => void) | null} handler
 */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/**
 * What people read when the server gives no usable error.
 * @param {number} status
 */
function genericMessage(status) {
  if (status === 401) return 'You are not signed in.';
  if (status === 403) return 'You are not allowed to do that.';
  if (status === 404) return 'Not found.';
  if (status === 429) return 'Too many attempts; wait a little and try again.';
  if (status >= 500) return 'The server failed to handle this request; its log says why.';
  return `The server answered ${status}.`;
}

/**
 * Sends a request and returns the JSON answer (`null` for an empty one).
 * Rejects with an {@link ApiError} for any status but 2xx.
 * @param {'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'} method
 * @param {string} path starting with `/api/v1/`
 * @param {unknown} [body] sent as JSON; `undefined` sends no body
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  /** @type {Record<string, string>} */
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['X-CSRF-Token'] = csrfToken;

  /** @type {Response} */
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      cache: 'no-store',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    throw new ApiError(0, 'network', 'Cannot reach the server. Check the connection and try again.');
  }

  const text = await response.text();
  /** @type {any} */
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (response.ok) return data;

  const problem = data && typeof data === 'object' ? data.error : null;
  const retry = Number(response.headers.get('Retry-After'));
  const error = new ApiError(
    response.status,
    typeof problem?.code === 'string' ? problem.code : 'http_error',
    typeof problem?.message === 'string' && problem.message ? problem.message : genericMessage(response.status),
    Array.isArray(problem?.fields) ? problem.fields : [],
    Number.isFinite(retry) && retry > 0 ? retry : null,
  );
  if (response.status === 401 && unauthorizedHandler) unauthorizedHandler(error);
  throw error;
}

/**
 * Where to go after signing in: `next` if it is a path on this server,
 * else the admin console for administrators and the home page for others.
 * @param {string | null} next
 * @param {User} user
 * @returns {string}
 */
export function landingPage(next, user) {
  if (next && next.startsWith('/') && !next.startsWith('//') && !next.startsWith('/\\')) {
    try {
      const url = new URL(next, location.origin);
      if (url.origin === location.origin) return url.pathname + url.search + url.hash;
    } catch {
      // Not a URL at all: fall through to the default.
    }
  }
  return user.role === 'admin' ? '/admin' : '/';
}

/**
 * An API message as a sentence: the server writes them in lower case
 * without a full stop, to be embedded; pages show them on their own.
 * @param {string} text
 * @returns {string}
 */
export function sentence(text) {
  const trimmed = text.trim();
  if (!trimmed) return trimmed;
  // A message that starts with a field name (`max_members must be…`) keeps it as written.
  const capital = /^\S*_/.test(trimmed) ? trimmed : trimmed[0].toUpperCase() + trimmed.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}
