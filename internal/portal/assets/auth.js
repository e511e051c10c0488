// auth.js: sign-in with the local issuer, OAuth 2 authorization code with
// PKCE (RFC 7636). The access token lives in sessionStorage, so it ends
// with the tab; nothing is kept in localStorage or cookies.

const CLIENT_ID = 'citadel-portal';
const KEYS = {
  token: 'citadel.token',
  expires: 'citadel.expires', // ms since the epoch
  verifier: 'citadel.verifier',
  state: 'citadel.state',
  route: 'citadel.route',
  redirects: 'citadel.redirects', // when signIn last redirected, for the loop guard
};

/** SignInError is a sign-in that failed; its message is for the user. */
export class SignInError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
  }
}

let endpoints = null; // {loginEndpoint, audience}

/**
 * init reads the cloud metadata: where the issuer is and the ARM audience
 * tokens are asked for.
 */
export async function init() {
  const resp = await fetch('/metadata/endpoints?api-version=2022-09-01');
  if (!resp.ok) throw new SignInError(`The cloud metadata could not be read (HTTP ${resp.status}).`);
  const meta = await resp.json();
  endpoints = {
    loginEndpoint: String(meta.authentication.loginEndpoint).replace(/\/+$/, ''),
    audience: String(meta.authentication.audiences[0]),
  };
}

function redirectURI() {
  return location.origin + '/portal/';
}

/** token is the access token, or null when there is none or it expired. */
export function token() {
  const t = sessionStorage.getItem(KEYS.token);
  const expires = Number(sessionStorage.getItem(KEYS.expires));
  return t && Date.now() < expires - 30_000 ? t : null;
}

/** user is who the token was issued to: {upn, name, oid}. */
export function user() {
  const claims = decodeJWT(token() ?? '');
  return {upn: claims.upn || claims.unique_name || '', name: claims.name || '', oid: claims.oid || ''};
}

/** decodeJWT returns a JWT's payload (unverified: the server checks it). */
export function decodeJWT(jwt) {
  try {
    const part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
    const bytes = Uint8Array.from(atob(part), c => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return {};
  }
}

/** base64url encodes bytes without padding (RFC 4648 §5). */
export function base64url(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function randomString() {
  return base64url(crypto.getRandomValues(new Uint8Array(32))); // 43 characters
}

/** challenge is the S256 code_challenge of verifier. */
export async function challenge(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/**
 * signIn sends the browser to the issuer's authorize endpoint, keeping the
 * verifier, the state and the current route for the way back. A fourth
 * redirect within a minute is refused instead: the server keeps refusing
 * the tokens it issues, and looping would hide why.
 */
export function signIn() {
  redirecting ??= redirect();
  return redirecting;
}

// redirecting is the redirect under way: concurrent requests that all
// got a 401 share one, so that one verifier and state are kept.
let redirecting = null;

async function redirect() {
  const recent = JSON.parse(sessionStorage.getItem(KEYS.redirects) || '[]').filter(t => Date.now() - t < 60_000);
  if (recent.length >= 3) {
    sessionStorage.removeItem(KEYS.redirects);
    throw new SignInError('The server keeps refusing the sign-in. Reload the page to try again.');
  }
  sessionStorage.setItem(KEYS.redirects, JSON.stringify([...recent, Date.now()]));
  const verifier = randomString();
  const state = randomString();
  for (const k of [KEYS.token, KEYS.expires]) sessionStorage.removeItem(k);
  sessionStorage.setItem(KEYS.verifier, verifier);
  sessionStorage.setItem(KEYS.state, state);
  sessionStorage.setItem(KEYS.route, location.hash);
  const scope = endpoints.audience.replace(/\/+$/, '') + '/.default openid';
  location.assign(`${endpoints.loginEndpoint}/oauth2/authorize?response_type=code` +
    `&client_id=${CLIENT_ID}` +
    `&redirect_uri=${encodeURIComponent(redirectURI())}` +
    `&scope=${encodeURIComponent(scope)}` +
    `&code_challenge=${await challenge(verifier)}&code_challenge_method=S256` +
    `&state=${state}`);
  return new Promise(() => {}); // the page is going away
}

/** signOut forgets the session and signs in again. */
export function signOut() {
  sessionStorage.clear();
  return signIn();
}

/**
 * ensureSignedIn returns once there is a token: from the session, from the
 * code the issuer sent back in the URL, or after a trip to the issuer. An
 * error the issuer sent back is thrown as a SignInError.
 */
export async function ensureSignedIn() {
  const params = new URLSearchParams(location.search);
  if (params.has('error')) {
    const route = sessionStorage.getItem(KEYS.route) || '';
    history.replaceState(null, '', location.pathname + route);
    throw new SignInError(params.get('error_description') || 'The sign-in failed.', params.get('error'));
  }
  if (params.has('code')) {
    await redeem(params.get('code'), params.get('state'));
    return;
  }
  if (!token()) await signIn();
}

// redeem exchanges the code for a token, then restores the route the user
// was on before signing in.
async function redeem(code, state) {
  const expected = sessionStorage.getItem(KEYS.state);
  const verifier = sessionStorage.getItem(KEYS.verifier);
  const route = sessionStorage.getItem(KEYS.route) || '#/fleet';
  for (const k of [KEYS.state, KEYS.verifier, KEYS.route]) sessionStorage.removeItem(k);
  history.replaceState(null, '', location.pathname + route);
  if (!expected || state !== expected || !verifier) {
    throw new SignInError('The sign-in answer does not match a sign-in started here (state mismatch).', 'invalid_state');
  }
  const resp = await fetch(`${endpoints.loginEndpoint}/oauth2/token`, {
    method: 'POST',
    headers: {'Content-Type': 'application/x-www-form-urlencoded'},
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: redirectURI(),
      client_id: CLIENT_ID, code_verifier: verifier,
    }),
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok || !body.access_token) {
    throw new SignInError(body.error_description || `The token request failed (HTTP ${resp.status}).`, body.error);
  }
  sessionStorage.setItem(KEYS.token, body.access_token);
  sessionStorage.setItem(KEYS.expires, String(Date.now() + Number(body.expires_in || 3600) * 1000));
}
