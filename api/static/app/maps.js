/* The map pages: pickers in the address bar, the map fetched with the user's token into a frame. */
(function () {
  'use strict';
  const page = document.body.dataset.page;
  const lang = document.body.dataset.lang;
  const S = window.LabourAtlasSession;
  const pickers = document.getElementById('pickers');
  const signin = document.getElementById('signin');
  const frame = document.getElementById('frame');
  const message = document.getElementById('message');
  const say = t => { message.textContent = t || ''; };

  // The pickers start from the address bar, so a map can be linked to and reloaded.
  const query = new URLSearchParams(location.search);
  for (const el of pickers.elements) if (el.name && query.get(el.name)) el.value = query.get(el.name);
  if (page === 'coverage' && !query.get('year') && !query.get('half')) pickers.elements.year.value = new Date().getFullYear();

  function params() {
    const p = new URLSearchParams({ lang });
    for (const el of pickers.elements) if (el.name && el.value) p.set(el.name, el.value);
    return p;
  }

  async function show() {
    if (!S.load()) { signin.hidden = false; frame.hidden = true; return; }
    signin.hidden = true;
    const p = params();
    history.replaceState(null, '', location.pathname + '?' + p);
    say(lang === 'vi' ? 'Đang tải bản đồ…' : 'Loading the map…');
    try {
      const r = await S.fetch(`/maps/${page}/frame?${p}`);
      if (!r.ok) {
        const body = await r.json().catch(() => ({}));
        const detail = Array.isArray(body.detail) ? body.detail.map(d => d.msg).join('; ') : body.detail;
        say(detail || r.status);
        return;
      }
      frame.srcdoc = await r.text();
      frame.hidden = false;
      say('');
    } catch (e) {
      if (e.status === 401) { signin.hidden = false; frame.hidden = true; say(lang === 'vi' ? 'Hãy đăng nhập.' : 'Please sign in.'); }
      else say(String(e.message || e));
    }
  }

  pickers.addEventListener('submit', e => { e.preventDefault(); show(); });
  document.getElementById('signout').onclick = () => { S.signOut(); frame.srcdoc = ''; show(); };
  signin.addEventListener('submit', async e => {
    e.preventDefault();
    try { await S.signIn(signin.elements.username.value, signin.elements.password.value); signin.reset(); show(); }
    catch (err) { say(err.message); }
  });
  show();
})();
