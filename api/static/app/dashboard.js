/* The dashboard panel of the first page: sign in, then the headline numbers of your area and links to your pages. */
(function () {
  'use strict';
  const S = window.LabourAtlasSession;
  const $ = id => document.getElementById(id);
  const fmt = v => v === null || v === undefined ? '—' : Number(v).toLocaleString('vi-VN');

  async function render() {
    $('dash-message').textContent = '';
    if (!S.load()) { $('dash-signin').hidden = false; $('dash-body').hidden = true; return; }
    try {
      const r = await S.fetch('/api/v1/dashboard');
      if (!r.ok) throw new Error('HTTP ' + r.status);
      const d = await r.json();
      $('dash-who').textContent = `${d.username} (${d.role}) — ${d.area.map(a => a.name).join(', ') || 'toàn quốc'}`;
      const dl = $('dash-numbers');
      dl.textContent = '';
      for (const n of d.numbers) {
        const dt = document.createElement('dt'); dt.textContent = n.label.vi;
        const dd = document.createElement('dd'); dd.textContent = fmt(n.value); dd.dataset.key = n.key;
        dl.append(dt, dd);
        if (n.note) { const note = document.createElement('span'); note.className = 'note'; note.textContent = n.note; dl.append(note); }
      }
      const nav = $('dash-links');
      nav.textContent = '';
      for (const l of d.links) { const a = document.createElement('a'); a.href = l.href; a.textContent = l.label.vi; nav.append(a); }
      $('dash-signin').hidden = true;
      $('dash-body').hidden = false;
      $('dash').open = true;  // signed in: the numbers are what the page is for
    } catch (e) {
      if (e.status === 401) { $('dash-signin').hidden = false; $('dash-body').hidden = true; }
      $('dash-message').textContent = e.message;
    }
  }

  $('dash-signin').addEventListener('submit', async e => {
    e.preventDefault();
    const f = e.target;
    try { await S.signIn(f.elements.username.value, f.elements.password.value); f.reset(); render(); }
    catch (err) { $('dash-message').textContent = err.message; }
  });
  $('dash-signout').onclick = () => { S.signOut(); render(); };
  render();
})();
