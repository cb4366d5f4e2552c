/* Sign-in for the pages of Labour Atlas (dashboard and maps), and fetch with the user's token.
 *
 * The access token and the refresh token are kept in sessionStorage: they
 * end with the browser tab, which suits an office computer. A 401 refreshes
 * the tokens once and tries again.
 */
(function () {
  'use strict';
  const KEY = 'labourAtlas.pages.session';

  function load() {
    try { return JSON.parse(sessionStorage.getItem(KEY)) || null; } catch (e) { return null; }
  }
  function save(s) { if (s) sessionStorage.setItem(KEY, JSON.stringify(s)); else sessionStorage.removeItem(KEY); }

  async function signIn(username, password) {
    const body = new URLSearchParams({ username, password });
    const r = await fetch('/api/v1/auth/token', { method: 'POST', body });
    const answer = await r.json().catch(() => ({}));
    if (!r.ok) throw new Error(typeof answer.detail === 'string' ? answer.detail : 'sign-in failed (' + r.status + ')');
    save({ access: answer.access_token, refresh: answer.refresh_token, user: username });
    return load();
  }

  async function refresh(s) {
    const r = await fetch('/api/v1/auth/refresh', { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                    body: JSON.stringify({ refresh_token: s.refresh }) });
    if (!r.ok) { save(null); return null; }
    const answer = await r.json();
    const next = { access: answer.access_token, refresh: answer.refresh_token, user: s.user };
    save(next);
    return next;
  }

  async function authorizedFetch(url, options) {
    let s = load();
    if (!s) { const e = new Error('not signed in'); e.status = 401; throw e; }
    const call = token => fetch(url, Object.assign({}, options || {}, {
      headers: Object.assign({}, (options || {}).headers || {}, { Authorization: 'Bearer ' + token }) }));
    let r = await call(s.access);
    if (r.status === 401 && s.refresh) {
      s = await refresh(s);
      if (!s) { const e = new Error('session ended'); e.status = 401; throw e; }
      r = await call(s.access);
    }
    return r;
  }

  function signOut() { save(null); }

  window.LabourAtlasSession = { load, signIn, signOut, fetch: authorizedFetch };
})();
