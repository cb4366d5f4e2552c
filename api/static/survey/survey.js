/* The survey web form of Labour Atlas.
 *
 * Built from /survey/form.json (generated from the one form definition,
 * survey/definition.py): a new field there appears here with no change.
 * Validation repeats the server's rules (survey/schemas.py) with the server's
 * message catalogue (survey/messages.py, in form.json). A saved form goes to a
 * queue in IndexedDB FIRST ("saved" is said once it is on disk), then the queue
 * is sent to POST /api/v1/submissions whenever there is signal (on load, on the
 * `online` event, every 30 s). Plain JS, no build step, no external files.
 */
(function () {
  'use strict';

  const LANG = document.body.dataset.lang === 'en' ? 'en' : 'vi';
  const SCOPE = document.body.dataset.scope || '/survey';
  const FLUSH_EVERY_MS = 30000;
  const SEND_TIMEOUT_MS = 30000;
  const SEARCH_TIMEOUT_MS = 8000;
  const VERSION = document.body.dataset.version || '';
  const KEY = {
    queue: 'labourAtlas.survey.queue',
    spec: 'labourAtlas.survey.spec',
    communes: 'labourAtlas.survey.communes',
    provinces: 'labourAtlas.survey.provinces',
    keep: 'labourAtlas.survey.keep',
    draft: 'labourAtlas.survey.draft',
    notices: 'labourAtlas.survey.notices',
    session: 'labourAtlas.survey.session',
    area: 'labourAtlas.survey.area',
    clock: 'labourAtlas.survey.clock',
  };
  // Refresh the access token this long before it expires (clock skew, slow networks).
  const TOKEN_MARGIN_MS = 60000;
  const MAX_CACHED_COMMUNES = 5000;
  const MAX_NOTICES = 30;
  const NEWS_MS = 15000;

  const TEXT = {
    vi: {
      unsent: 'Chưa gửi', sendNow: 'Gửi ngay', offline: 'Mất mạng: phiếu được lưu trên máy', online: '',
      slow: 'Mạng yếu: phiếu được lưu trên máy và sẽ được gửi lại sau',
      duration: m => m >= 60 ? `${Math.floor(m / 60)} giờ${m % 60 ? ' ' + (m % 60) + ' phút' : ''}` : `${m} phút`,
      flagged: 'Cán bộ sẽ kiểm tra phiếu này:',
      flagAccuracy: (acc, lim) => `sai số GPS ± ${acc} m, lớn hơn ${lim} m`,
      flagMock: 'điện thoại báo vị trí giả lập',
      flagNoLocation: r => `không có vị trí GPS (${r})`,
      flagMismatch: d => `vị trí GPS ở ngoài xã/phường đã chọn${d ? ' (cách ' + d + ' m)' : ''}`,
      areaReady: n => `Đã lưu ${n} xã/phường của địa bàn để tìm khi không có mạng`,
      communeOfflineArea: 'Không có mạng: tìm trong các xã/phường của địa bàn đã lưu trên máy',
      fixThese: 'Sửa các câu đánh dấu đỏ rồi lưu lại để gửi lại.',
      sending: 'Đang gửi…', loadFailed: 'Không tải được biểu mẫu. Hãy mở lại trang khi có mạng.',
      chooseKindFirst: 'Chọn loại phiếu để hiện các câu hỏi riêng.',
      choose: '— Chọn —', yes: 'Có', no: 'Không', required: 'Phải trả lời câu này',
      requiredChoice: 'Phải chọn một mục', requiredMulti: 'Phải chọn ít nhất một mục',
      mustTick: 'Phải có sự đồng ý của người được hỏi thì mới gửi được phiếu',
      needConsent: 'Cần người được hỏi đồng ý trước khi ghi thông tin cá nhân.',
      integer: 'Phải là số nguyên', tooLong: n => `Tối đa ${n} ký tự`,
      ageRange: (lo, hi, min, max) => `Năm sinh phải từ ${lo} đến ${hi} (tuổi từ ${min} đến ${max})`,
      ageHint: (lo, hi) => `Năm sinh từ ${lo} đến ${hi}`,
      range: (min, max) => `Phải từ ${min} đến ${max}`,
      badDate: 'Ngày không hợp lệ', future: 'Ngày này ở sau hôm nay', tooEarly: d => `Ngày phải từ ${d} trở đi`,
      badChoice: 'Lựa chọn không hợp lệ', clock: p => `Đồng hồ điện thoại sai: ngày hôm nay trước ngày ban hành biểu mẫu (${p}). Hãy chỉnh lại ngày giờ.`,
      gpsButton: 'Lấy vị trí GPS', gpsAgain: 'Lấy lại vị trí GPS', gpsWaiting: 'Đang lấy vị trí…',
      gpsNone: 'Chưa lấy vị trí GPS', gpsUnsupported: 'Điện thoại không hỗ trợ định vị',
      gpsDenied: 'Không được phép dùng vị trí: hãy cho phép trong cài đặt trình duyệt',
      gpsFailed: 'Không lấy được vị trí: ra chỗ thoáng rồi thử lại', gpsTimeout: 'Hết thời gian chờ GPS: thử lại',
      gpsShow: (lat, lon, acc) => `Vĩ độ ${lat}, kinh độ ${lon} · sai số ± ${acc} m`,
      gpsCoarse: lim => `Sai số lớn hơn ${lim} m: nên ra chỗ thoáng và lấy lại`,
      gpsOutside: 'Vị trí này không ở Việt Nam: hãy lấy lại vị trí',
      gpsSuggest: c => `Theo GPS: ${c}. Chọn xã/phường này`,
      gpsElsewhere: c => `Lưu ý: vị trí GPS nằm ở ${c}, khác xã/phường đã chọn`,
      communePlaceholder: 'Gõ tên xã/phường, vd: hong linh',
      communeSearching: 'Đang tìm…', communeNone: 'Không tìm thấy xã/phường nào',
      communeOffline: 'Không có mạng: chỉ tìm trong các xã/phường đã xem trước đây',
      communeMore: n => `Còn ${n} kết quả khác: gõ thêm chữ`,
      communeChosen: c => `Đã chọn: ${c}`, communeMissing: 'Chưa chọn xã/phường',
      summary: n => `Còn ${n} câu cần sửa (đánh dấu đỏ).`,
      storageFull: 'Bộ nhớ điện thoại đầy: không lưu được phiếu. Hãy gửi các phiếu chưa gửi trước.',
      saved: who => `Đã lưu phiếu${who ? ' của ' + who : ''}. Mời nhập người tiếp theo.`,
      sent: who => `Đã gửi phiếu${who ? ' của ' + who : ''}.`,
      already: who => `Phiếu${who ? ' của ' + who : ''} đã có trên máy chủ.`,
      conflict: who => `Lỗi: mã phiếu${who ? ' của ' + who : ''} đã được dùng cho một phiếu khác. Phiếu này không được lưu trên máy chủ.`,
      rejected: who => `Máy chủ từ chối phiếu${who ? ' của ' + who : ''} (đã chuyển vào mục cần xử lý):`,
      failed: (who, s) => `Không gửi được phiếu${who ? ' của ' + who : ''} (lỗi ${s}).`,
      fix: 'Sửa lại phiếu này', dismiss: 'Đóng', fixing: 'Đang sửa phiếu bị từ chối: lưu lại để gửi lại.',
      signedIn: u => `Đang đăng nhập: ${u}`, needSignIn: 'Hãy đăng nhập để gửi phiếu. Phiếu vẫn được lưu trên máy.',
      badLogin: 'Sai tên đăng nhập hoặc mật khẩu', locked: d => `Tài khoản bị khóa tạm thời: ${d}`,
      loginOffline: 'Không có mạng: đăng nhập khi có mạng. Phiếu vẫn được lưu trên máy.',
      sessionEnded: 'Phiên đăng nhập đã hết: hãy đăng nhập lại để gửi phiếu.',
      wrongRole: 'Tài khoản này không được gửi phiếu khảo sát.',
      outside: who => `Phiếu${who ? ' của ' + who : ''} ở ngoài địa bàn của bạn (đã chuyển cho cán bộ địa bàn đó):`,
    },
    en: {
      unsent: 'Unsent', sendNow: 'Send now', offline: 'Offline: forms are kept on this phone', online: '',
      slow: 'Weak signal: forms are kept on this phone and sent later',
      duration: m => m >= 60 ? `${Math.floor(m / 60)} h${m % 60 ? ' ' + (m % 60) + ' min' : ''}` : `${m} min`,
      flagged: 'An officer will check this form:',
      flagAccuracy: (acc, lim) => `GPS accuracy ± ${acc} m, worse than ${lim} m`,
      flagMock: 'the phone reports a mock location',
      flagNoLocation: r => `no GPS location (${r})`,
      flagMismatch: d => `the GPS location is outside the chosen commune${d ? ' (' + d + ' m away)' : ''}`,
      areaReady: n => `${n} communes of your area kept for searching offline`,
      communeOfflineArea: 'Offline: searching the communes of your area kept on this phone',
      fixThese: 'Fix the answers marked in red, then save to send it again.',
      sending: 'Sending…', loadFailed: 'The form could not be loaded. Open the page again when online.',
      chooseKindFirst: 'Choose the record kind to show its own questions.',
      choose: '— Choose —', yes: 'Yes', no: 'No', required: 'This question must be answered',
      requiredChoice: 'Choose one', requiredMulti: 'Choose at least one',
      mustTick: 'The person must consent before the form can be sent',
      needConsent: 'The person must consent before anything personal is recorded.',
      integer: 'Must be a whole number', tooLong: n => `At most ${n} characters`,
      ageRange: (lo, hi, min, max) => `Year of birth must be ${lo} to ${hi} (age ${min} to ${max})`,
      ageHint: (lo, hi) => `Born ${lo} to ${hi}`,
      range: (min, max) => `Must be ${min} to ${max}`,
      badDate: 'Not a valid date', future: 'This date is after today', tooEarly: d => `The date must be ${d} or later`,
      badChoice: 'Not a valid choice', clock: p => `The phone's clock is wrong: today is before the form was published (${p}). Set the date and time.`,
      gpsButton: 'Get GPS location', gpsAgain: 'Get GPS location again', gpsWaiting: 'Getting the location…',
      gpsNone: 'No GPS location yet', gpsUnsupported: 'This phone cannot give a location',
      gpsDenied: 'Location not allowed: allow it in the browser settings',
      gpsFailed: 'No location: go into the open and try again', gpsTimeout: 'GPS timed out: try again',
      gpsShow: (lat, lon, acc) => `Latitude ${lat}, longitude ${lon} · accuracy ± ${acc} m`,
      gpsCoarse: lim => `Accuracy worse than ${lim} m: go into the open and try again`,
      gpsOutside: 'This location is not in Viet Nam: get the location again',
      gpsSuggest: c => `From GPS: ${c}. Choose it`,
      gpsElsewhere: c => `Note: the GPS location is in ${c}, not in the chosen commune`,
      communePlaceholder: 'Type the commune name, e.g. hong linh',
      communeSearching: 'Searching…', communeNone: 'No commune found',
      communeOffline: 'Offline: searching only the communes seen before',
      communeMore: n => `${n} more: type more letters`,
      communeChosen: c => `Chosen: ${c}`, communeMissing: 'No commune chosen',
      summary: n => `${n} answers to fix (marked in red).`,
      storageFull: 'The phone storage is full: the form was not saved. Send the unsent forms first.',
      saved: who => `Saved${who ? ': ' + who : ''}. Next person.`,
      sent: who => `Sent${who ? ': ' + who : ''}.`,
      already: who => `Already on the server${who ? ': ' + who : ''}.`,
      conflict: who => `Error: the form id${who ? ' of ' + who : ''} is already used by another form. It was not stored.`,
      rejected: who => `The server rejected the form${who ? ' of ' + who : ''} (kept for review):`,
      failed: (who, s) => `The form${who ? ' of ' + who : ''} could not be sent (error ${s}).`,
      fix: 'Correct this form', dismiss: 'Close', fixing: 'Correcting a rejected form: save it to send it again.',
      signedIn: u => `Signed in: ${u}`, needSignIn: 'Sign in to send forms. Saved forms stay on this phone.',
      badLogin: 'Wrong username or password', locked: d => `Account locked for a while: ${d}`,
      loginOffline: 'Offline: sign in when there is signal. Saved forms stay on this phone.',
      sessionEnded: 'Your session has ended: sign in again to send forms.',
      wrongRole: 'This account may not send survey forms.',
      outside: who => `The form${who ? ' of ' + who : ''} is outside your area (passed to an officer of that area):`,
    },
  }[LANG];

  const $ = id => document.getElementById(id);
  const form = $('survey');
  const fieldsEl = $('fields');
  let spec = null;
  let consentField = null;
  const state = { location: null, commune: null, resubmit: null, suggestion: null, collectedAt: null };

  // ---------------------------------------------------------------- storage
  // IndexedDB, written with strict durability: a form is on disk when its
  // transaction completes, and only then is "saved" shown. (localStorage,
  // used before, is written to disk lazily: a phone dying a second after
  // "saved" lost the form.) Small values are mirrored in memory so that the
  // page reads them at once; the queue is read from the database each time,
  // so that two tabs never overwrite each other's forms. Without IndexedDB
  // (some private modes) localStorage is the fallback.
  const DB_NAME = 'labour-atlas-survey';
  const KV_KEYS = Object.keys(KEY).filter(k => k !== 'queue').map(k => KEY[k]);
  let db = null;
  const mem = {};
  const channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel('labour-atlas-survey') : null;
  function openDb() {
    return new Promise(resolve => {
      if (!window.indexedDB) { resolve(null); return; }
      let req;
      try { req = indexedDB.open(DB_NAME, 1); } catch (e) { resolve(null); return; }
      req.onupgradeneeded = () => {
        const d = req.result;
        if (!d.objectStoreNames.contains('queue')) d.createObjectStore('queue', { keyPath: 'id' });
        if (!d.objectStoreNames.contains('kv')) d.createObjectStore('kv');
      };
      req.onsuccess = () => resolve(req.result);
      req.onerror = () => resolve(null);
      req.onblocked = () => resolve(null);
    });
  }
  // Runs `work` in one read-write transaction; true once it is durably written.
  function write(stores, work) {
    return new Promise(resolve => {
      let t;
      try { t = db.transaction(stores, 'readwrite', { durability: 'strict' }); } catch (e) {
        try { t = db.transaction(stores, 'readwrite'); } catch (e2) { resolve(false); return; }
      }
      t.oncomplete = () => resolve(true);
      t.onerror = () => resolve(false);
      t.onabort = () => resolve(false);
      try { work(t); } catch (e) { try { t.abort(); } catch (e2) { /* already over */ } resolve(false); }
    });
  }
  function readStore(name, keys) {
    return new Promise(resolve => {
      let t;
      try { t = db.transaction(name, 'readonly'); } catch (e) { resolve([]); return; }
      const r = keys ? t.objectStore(name).getAllKeys() : t.objectStore(name).getAll();
      r.onsuccess = () => resolve(r.result || []);
      r.onerror = () => resolve([]);
    });
  }
  function lsLoad(key, fallback) {
    try {
      const raw = localStorage.getItem(key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback;
    }
  }
  function lsStore(key, value) {
    try {
      localStorage.setItem(key, JSON.stringify(value));
      return true;
    } catch (e) {
      return false;
    }
  }
  const load = (key, fallback) => (key in mem && mem[key] !== undefined ? mem[key] : fallback);
  // Resolves true once written.
  function store(key, value) {
    mem[key] = value;
    const done = db ? write('kv', t => t.objectStore('kv').put(value, key)) : Promise.resolve(lsStore(key, value));
    if (channel && (key === KEY.notices || key === KEY.session)) done.then(() => channel.postMessage(key));
    return done;
  }
  function forget(key) {
    delete mem[key];
    return db ? write('kv', t => t.objectStore('kv').delete(key)) : Promise.resolve(lsRemove(key));
  }
  function lsRemove(key) {
    try { localStorage.removeItem(key); } catch (e) { /* ignore */ }
    return true;
  }
  async function readQueue() {
    if (!db) return lsLoad(KEY.queue, []);
    const items = await readStore('queue');
    return items.sort((x, y) => (x.seq || 0) - (y.seq || 0));
  }
  // A form into the queue, and the next draft out, in one durable transaction.
  async function enqueue(item) {
    item.seq = Date.now() + Math.random();
    if (!db) {
      const q = lsLoad(KEY.queue, []).filter(x => x.id !== item.id);
      q.push(item);
      return lsStore(KEY.queue, q);
    }
    const ok = await write(['queue', 'kv'], t => {
      t.objectStore('queue').put(item);
      t.objectStore('kv').delete(KEY.draft);
    });
    if (ok && channel) channel.postMessage(KEY.queue);
    return ok;
  }
  async function dequeue(id) {
    if (!db) lsStore(KEY.queue, lsLoad(KEY.queue, []).filter(q => q.id !== id));
    else await write('queue', t => t.objectStore('queue').delete(id));
    if (channel) channel.postMessage(KEY.queue);
  }
  async function loadMemory() {
    if (!db) { for (const k of KV_KEYS) mem[k] = lsLoad(k, undefined); return; }
    const [keys, values] = await Promise.all([readStore('kv', true), readStore('kv')]);
    keys.forEach((k, i) => { mem[k] = values[i]; });
  }
  // Forms saved by the version of this page that used localStorage move to
  // IndexedDB once; localStorage is cleared only after they are on disk.
  async function migrateLocalStorage() {
    if (!db) return;
    const old = {};
    for (const k of Object.values(KEY)) {
      const v = lsLoad(k, undefined);
      if (v !== undefined && !(k === KEY.draft && v && v.at)) old[k] = v;  // a draft with `at` is this version's copy
    }
    if (!Object.keys(old).length) return;
    const queue = Array.isArray(old[KEY.queue]) ? old[KEY.queue] : [];
    const ok = await write(['queue', 'kv'], t => {
      queue.forEach((item, i) => { if (item && item.id) t.objectStore('queue').put(Object.assign({ seq: i }, item)); });
      for (const [k, v] of Object.entries(old)) if (k !== KEY.queue) t.objectStore('kv').put(v, k);
    });
    if (ok) for (const k of Object.keys(old)) lsRemove(k);
  }
  async function openStorage() {
    db = await openDb();
    await migrateLocalStorage();
    await loadMemory();
    if (channel) {
      channel.onmessage = async e => {
        if (e.data === KEY.queue) { renderCount(); return; }
        if (db) {
          const all = await readStore('kv');
          const keys = await readStore('kv', true);
          keys.forEach((k, i) => { if (k === e.data) mem[k] = all[i]; });
        }
        if (e.data === KEY.notices) renderNotices();
        if (e.data === KEY.session) renderSession();
      };
    }
  }
  // Asked once: a browser short of space then keeps these forms instead of evicting them.
  async function askPersistence() {
    try {
      if (navigator.storage && navigator.storage.persist && !(await navigator.storage.persisted())) await navigator.storage.persist();
    } catch (e) { /* not offered: the forms are still stored */ }
  }

  // ------------------------------------------------------------------ utils
  function fold(s) {
    return String(s).replace(/đ/g, 'd').replace(/Đ/g, 'D').normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase().trim();
  }
  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') {
      try { return window.crypto.randomUUID(); } catch (e) { /* insecure context: fall through */ }
    }
    const b = new Uint8Array(16);
    if (window.crypto && window.crypto.getRandomValues) window.crypto.getRandomValues(b);
    else for (let i = 0; i < 16; i++) b[i] = Math.floor(Math.random() * 256);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const h = Array.from(b, x => x.toString(16).padStart(2, '0')).join('');
    return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
  }
  const p2 = n => String(n).padStart(2, '0');
  // "2026-03-05T14:07:09+07:00": the phone's local time with its offset.
  function localIso(d) {
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? '+' : '-';
    const a = Math.abs(off);
    return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}T${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}${sign}${p2(Math.floor(a / 60))}:${p2(a % 60)}`;
  }
  // The date in Viet Nam (the server judges dates there), "YYYY-MM-DD".
  function vnDate(d) {
    try {
      const parts = new Intl.DateTimeFormat('en-US', { timeZone: spec.rules.timezone, year: 'numeric', month: '2-digit', day: '2-digit' })
        .formatToParts(d).reduce((o, p) => (o[p.type] = p.value, o), {});
      return `${parts.year}-${parts.month}-${parts.day}`;
    } catch (e) {
      return localIso(d).slice(0, 10);
    }
  }
  const showDate = iso => LANG === 'vi' ? iso.split('-').reverse().join('/') : iso;
  const label = f => f.label[LANG] || f.label.vi;
  const choiceLabel = c => c.label[LANG] || c.label.vi;
  const el = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = v;
      else if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
  };
  // Every answer from the server says the network works (whatever its status)
  // and, by its Date header, how far the phone's clock is off; a failure says
  // whether the phone is offline or the signal too weak to finish in time.
  async function fetchWithTimeout(url, options, ms) {
    const ctl = typeof AbortController === 'function' ? new AbortController() : null;
    const timer = ctl ? setTimeout(() => ctl.abort(), ms) : null;
    const sent = Date.now();
    try {
      const r = await fetch(url, Object.assign({}, options, ctl ? { signal: ctl.signal } : {}));
      setNet('online');
      noteClock(r, sent);
      return r;
    } catch (e) {
      // A lost or late answer while the phone has a network is a weak signal, not "no network".
      setNet(navigator.onLine === false ? 'offline' : 'slow');
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }
  // Phone clock minus server clock, in ms (measured at the latest answer).
  function noteClock(r, sent) {
    const date = r.headers && r.headers.get('Date');
    const server = date ? Date.parse(date) : NaN;
    if (!isFinite(server)) return;
    const now = Date.now();
    const offset = Math.round((sent + now) / 2 - server - 500);  // the header is whole seconds
    const old = load(KEY.clock, null);
    if (!old || Math.abs(old.offset - offset) > 30000) store(KEY.clock, { offset, at: now });
  }
  function clockNote() {
    const c = load(KEY.clock, null);
    if (!c || Math.abs(c.offset) < 120000) return '';
    const minutes = Math.round(Math.abs(c.offset) / 60000);
    return msg(c.offset > 0 ? 'clock_ahead' : 'clock_behind', null, { amount: TEXT.duration(minutes) });
  }

  // ---------------------------------------------------------------- session
  // The refresh token (valid for weeks) stays on the phone so that forms
  // saved offline for days are sent without typing the password again; the
  // short-lived access token is renewed with it when there is signal.
  const session = () => load(KEY.session, null);
  // Why the session ended stays on screen until someone signs in (not replaced by the general invitation).
  let sessionMessage = null;
  function renderSession(message) {
    const s = session();
    if (message) sessionMessage = message;
    if (s) sessionMessage = null;
    const shownMessage = message || (s ? '' : sessionMessage || TEXT.needSignIn);
    $('who').textContent = s ? TEXT.signedIn(s.username) : '';
    $('signin').hidden = !!s;
    $('signout').hidden = !s;
    $('signin-error').textContent = shownMessage;
    $('signin-error').classList.toggle('hint', !message && !sessionMessage);  // an invitation, not an error
  }
  function keepTokens(username, body) {
    return store(KEY.session, {
      username, access: body.access_token, refresh: body.refresh_token,
      access_until: Date.now() + body.expires_in * 1000,
    });
  }
  function endSession(message) {
    forget(KEY.session);
    if (!message) sessionMessage = null;
    renderSession(message);
  }
  async function signIn(e) {
    e.preventDefault();
    const f = $('signin');
    const username = f.elements.namedItem('username').value.trim();
    const body = new URLSearchParams({ username, password: f.elements.namedItem('password').value });
    let r;
    try {
      r = await fetchWithTimeout('/api/v1/auth/token', { method: 'POST', body, cache: 'no-store' }, SEND_TIMEOUT_MS);
    } catch (err) {
      $('signin-error').textContent = TEXT.loginOffline;
      $('signin-error').classList.add('hint');
      return;
    }
    let answer = null;
    try { answer = await r.json(); } catch (err) { answer = null; }
    if (r.ok && answer) {
      f.reset();
      await keepTokens(username.toLowerCase(), answer);
      renderSession();
      flush();
      loadArea();
    } else {
      $('signin-error').textContent = r.status === 423 && answer ? TEXT.locked(answer.detail) : TEXT.badLogin;
      $('signin-error').classList.remove('hint');
    }
  }
  // A usable access token; null when signed out or the session ended;
  // 'offline' when the token must be renewed but there is no signal.
  let renewing = null;
  async function accessToken(force) {
    const s = session();
    if (!s) return null;
    if (!force && s.access && s.access_until - TOKEN_MARGIN_MS > Date.now()) return s.access;
    if (!renewing) renewing = renew(s).finally(() => { renewing = null; });
    return renewing;
  }
  async function renew(s) {
    let r;
    try {
      r = await fetchWithTimeout('/api/v1/auth/refresh', {
        method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ refresh_token: s.refresh }),
        cache: 'no-store',
      }, SEND_TIMEOUT_MS);
    } catch (e) {
      return 'offline';
    }
    if (r.ok) {
      const body = await r.json();
      // On disk before it is used: a lost new token would leave only the old one, refused after the grace.
      await keepTokens(s.username, body);
      return body.access_token;
    }
    if (r.status === 401) { endSession(TEXT.sessionEnded); return null; }
    retryLater(r);
    return 'offline';  // the server is in trouble: try later (after its Retry-After, if it gave one)
  }

  // -------------------------------------------------------------- the form
  const allKinds = () => spec.kinds.map(k => k.value);
  const currentKind = () => {
    const checked = form.querySelector('input[name="kind"]:checked');
    return checked ? checked.value : null;
  };
  // Asked for this kind (all fields common to every kind while none is chosen).
  function asked(f, kind) {
    if (f.widget === 'auto') return false;
    if (!kind) return allKinds().every(k => f.kinds.includes(k));
    return f.kinds.includes(kind);
  }
  // A reason for a blank answer (why there is no GPS) is asked only while that answer is blank.
  const targetOf = f => (f.reason_for ? spec.fields.find(x => x.name === f.reason_for) : null);
  const reasonFor = f => spec.fields.find(x => x.reason_for === f.name) || null;
  function shown(f, kind) {
    if (!asked(f, kind)) return false;
    const target = targetOf(f);
    return !(target && !blank(readValue(target)));
  }
  // A message of the server's catalogue (form.json), in the page's language.
  function msg(code, fieldName, params) {
    const t = spec && spec.messages && spec.messages[code];
    if (!t) return params && params.detail ? String(params.detail) : code;
    const values = Object.assign({}, params || {});
    const f = fieldName ? spec.fields.find(x => x.name === fieldName) : null;
    if (f) {
      if (values.label === undefined) values.label = label(f);
      if (values.format === undefined && f.format) values.format = f.format.message[LANG] || f.format.message.vi;
    }
    if (typeof values.kind === 'string') {
      const k = spec.kinds.find(x => x.value === values.kind);
      if (values.kind_label === undefined) values.kind_label = k ? choiceLabel(k) : values.kind;
      if (values.kind_article === undefined) values.kind_article = (/^[aeiou]/i.test(values.kind) ? 'an ' : 'a ') + values.kind;
    }
    return (t[LANG] || t.vi).replace(/\{(\w+)\}/g, (m, n) => (values[n] === undefined || values[n] === null ? m : String(values[n])));
  }
  // A server's error as the catalogue says it in this language (its English text when it has no code).
  const serverMessage = e => (e.code && spec && spec.messages && spec.messages[e.code] ? msg(e.code, e.field, e.params) : e.message);
  const idOf = name => 'f-' + name;
  const errOf = name => 'err-' + name;

  function build() {
    fieldsEl.textContent = '';
    document.title = spec.title[LANG] || spec.title.vi;
    $('title').textContent = document.title;
    for (const f of spec.fields) fieldsEl.append(buildField(f));
    fieldsEl.append(el('p', { id: 'kind-note', class: 'note', text: TEXT.chooseKindFirst }));
    consentField = spec.rules.consent_field ? spec.fields.find(f => f.name === spec.rules.consent_field) : null;
  }

  function fieldHint(f) {
    let text = f.hint ? (f.hint[LANG] || f.hint.vi) : '';
    if (f.range_of === 'age' && f.min !== null && f.max !== null) {
      const year = +vnDate(new Date()).slice(0, 4);
      text = (text ? text + ' · ' : '') + TEXT.ageHint(year - f.max, year - f.min);
    } else if (f.type === 'integer' && (f.min !== null || f.max !== null)) {
      text = (text ? text + ' · ' : '') + TEXT.range(f.min ?? '…', f.max ?? '…');
    }
    return text ? el('p', { class: 'hint', id: 'hint-' + f.name, text }) : null;
  }

  function buildField(f) {
    const wrap = el('div', { class: 'field', 'data-name': f.name, 'data-widget': f.widget });
    const put = (...nodes) => wrap.append(...nodes.filter(Boolean));
    if (f.personal) wrap.classList.add('personal');
    if (f.required) wrap.classList.add('required');
    const err = el('p', { class: 'err', id: errOf(f.name) });
    const hint = fieldHint(f);
    const described = [hint ? 'hint-' + f.name : null, errOf(f.name)].filter(Boolean).join(' ');
    const id = idOf(f.name);
    const title = label(f);
    switch (f.widget) {
      case 'auto':
        wrap.hidden = true;
        put(el('input', { type: 'hidden', name: f.name, id }));
        return wrap;
      case 'text':
        put(el('label', { for: id, text: title }), hint,
          el('input', { type: f.inputmode === 'tel' ? 'tel' : 'text', id, name: f.name, maxlength: f.max_length || null,
            inputmode: f.inputmode || null, 'aria-describedby': described, 'aria-required': f.required ? 'true' : null,
            autocomplete: 'off', spellcheck: 'false' }), err);
        return wrap;
      case 'number':
        put(el('label', { for: id, text: title }), hint,
          el('input', { type: 'text', id, name: f.name, inputmode: 'numeric', pattern: '[0-9]*', maxlength: 6,
            'aria-describedby': described, 'aria-required': f.required ? 'true' : null, autocomplete: 'off' }), err);
        return wrap;
      case 'date':
        put(el('label', { for: id, text: title }), hint,
          el('input', { type: 'date', id, name: f.name, min: spec.rules.earliest_date, max: vnDate(new Date()), 'aria-describedby': described,
            'aria-required': f.required ? 'true' : null }), err);
        return wrap;
      case 'datetime':
        put(el('label', { for: id, text: title }), hint,
          el('input', { type: 'datetime-local', id, name: f.name, 'aria-describedby': described,
            'aria-required': f.required ? 'true' : null }), err);
        return wrap;
      case 'checkbox': {
        const box = el('input', { type: 'checkbox', id, name: f.name, value: 'true', 'aria-describedby': described,
          'aria-required': f.required ? 'true' : null });
        put(el('label', { class: 'check big', for: id }, box, el('span', { text: title })), hint, err);
        return wrap;
      }
      case 'yesno':
      case 'radio':
      case 'checkboxes': {
        const multi = f.widget === 'checkboxes';
        const choices = f.widget === 'yesno'
          ? [{ value: 'true', label: { vi: TEXT.yes, en: TEXT.yes } }, { value: 'false', label: { vi: TEXT.no, en: TEXT.no } }]
          : f.choices;
        const set = el('fieldset', { id, 'aria-describedby': described, class: multi ? 'choices multi' : 'choices' },
          el('legend', { text: title }));
        choices.forEach((c, i) => {
          const cid = `${id}-${i}`;
          set.append(el('label', { class: 'check', for: cid },
            el('input', { type: multi ? 'checkbox' : 'radio', id: cid, name: f.name, value: c.value }),
            el('span', { text: choiceLabel(c) })));
        });
        put(set, hint, err);
        return wrap;
      }
      case 'select': {
        const select = el('select', { id, name: f.name, 'aria-describedby': described, 'aria-required': f.required ? 'true' : null },
          el('option', { value: '', text: TEXT.choose }));
        for (const c of f.choices) select.append(el('option', { value: c.value, text: choiceLabel(c) }));
        put(el('label', { for: id, text: title }), hint, select, err);
        return wrap;
      }
      case 'gps': {
        const button = el('button', { type: 'button', id: id + '-button', class: 'gps', 'aria-describedby': described, text: TEXT.gpsButton });
        button.addEventListener('click', () => getLocation(f));
        put(el('p', { class: 'label', id: id + '-label', text: title }), hint, button,
          el('input', { type: 'hidden', id, name: f.name }),
          el('p', { class: 'gps-status', id: id + '-status', 'aria-live': 'polite', text: TEXT.gpsNone }),
          el('p', { class: 'gps-note', id: id + '-note', 'aria-live': 'polite' }), err);
        return wrap;
      }
      case 'commune': {
        const search = el('input', { type: 'search', id: id + '-q', placeholder: TEXT.communePlaceholder, autocomplete: 'off',
          spellcheck: 'false', 'aria-describedby': `${id}-chosen ${described}`, 'aria-controls': id + '-results' });
        put(el('label', { for: id + '-q', text: title }), hint, search,
          el('input', { type: 'hidden', id, name: f.name }),
          el('p', { class: 'chosen', id: id + '-chosen', 'aria-live': 'polite' }),
          el('p', { class: 'note', id: id + '-status', 'aria-live': 'polite' }),
          el('ul', { class: 'results', id: id + '-results' }), err);
        bindCommune(f, search);
        return wrap;
      }
      default:
        put(el('label', { for: id, text: title }), hint,
          el('input', { type: 'text', id, name: f.name, 'aria-describedby': described }), err);
        return wrap;
    }
  }

  function refreshVisibility() {
    const kind = currentKind();
    for (const f of spec.fields) {
      const wrap = fieldsEl.querySelector(`.field[data-name="${f.name}"]`);
      if (wrap && f.widget !== 'auto') wrap.hidden = !shown(f, kind);
    }
    $('kind-note').hidden = Boolean(kind);
    // Without consent nothing personal is recorded: those questions wait for it.
    const consent = consentField ? readValue(consentField) === true : true;
    for (const wrap of fieldsEl.querySelectorAll('.field.personal')) {
      for (const control of wrap.querySelectorAll('input, select, button, fieldset')) control.disabled = !consent;
      wrap.classList.toggle('locked', !consent);
      let note = wrap.querySelector('.consent-note');
      if (!consent && !note) {
        note = el('p', { class: 'consent-note', text: TEXT.needConsent });
        wrap.insertBefore(note, wrap.children[1] || null);
      } else if (consent && note) note.remove();
    }
  }

  // ------------------------------------------------------------- values
  function readValue(f) {
    const named = form.elements.namedItem(f.name);
    switch (f.widget) {
      case 'auto':
        return null;
      case 'checkbox':
        return named && named.checked === true;
      case 'yesno': {
        const c = form.querySelector(`input[name="${f.name}"]:checked`);
        return c ? c.value === 'true' : null;
      }
      case 'radio': {
        const c = form.querySelector(`input[name="${f.name}"]:checked`);
        return c ? c.value : null;
      }
      case 'checkboxes':
        return Array.from(form.querySelectorAll(`input[name="${f.name}"]:checked`), c => c.value);
      case 'gps':
        return state.location;
      case 'commune':
        return state.commune ? state.commune.code : null;
      case 'number': {
        const v = named.value.trim();
        return v === '' ? null : (/^[0-9]+$/.test(v) ? parseInt(v, 10) : v);
      }
      case 'datetime': {
        const v = named.value;
        return v ? localIso(new Date(v)) : null;
      }
      default: {
        // NFC: the form a Vietnamese keyboard may not produce, and the one the server keeps.
        const v = named && typeof named.value === 'string' ? named.value.trim().normalize('NFC') : '';
        return v === '' ? null : v;
      }
    }
  }
  const blank = v => v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0);

  function setValue(f, v) {
    const named = form.elements.namedItem(f.name);
    switch (f.widget) {
      case 'auto':
        if (named) named.value = v == null ? '' : String(v);
        return;
      case 'checkbox':
        named.checked = v === true;
        return;
      case 'yesno':
      case 'radio':
      case 'checkboxes': {
        const wanted = Array.isArray(v) ? v.map(String) : v == null ? [] : [String(v)];
        for (const c of form.querySelectorAll(`input[name="${f.name}"]`)) c.checked = wanted.includes(c.value);
        return;
      }
      case 'gps':
        showLocation(f, v || null);
        return;
      case 'commune':
        chooseCommune(f, v ? communeByCode(v) || { code: v } : null);
        return;
      case 'datetime':
        named.value = v ? String(v).slice(0, 16) : '';
        return;
      default:
        named.value = v == null ? '' : String(v);
    }
  }

  // ------------------------------------------------------------ validation
  // The server's rules (survey/schemas.py), with Vietnamese messages.
  function validate(kind, now) {
    const errors = [];
    const add = (f, message) => errors.push({ field: f.name, message });
    const today = vnDate(now);
    const year = +today.slice(0, 4);
    const consentGiven = consentField ? readValue(consentField) === true : true;
    for (const f of spec.fields) {
      if (f.name === 'kind') {
        if (!kind) add(f, msg('required_choice', f.name));
        continue;
      }
      if (!shown(f, kind)) continue;
      if (f.personal && !consentGiven) continue;  // locked: the consent error says why
      const v = readValue(f);
      if (f.widget === 'checkbox') {
        if (f.required && v !== true) add(f, f === consentField ? msg('consent', f.name) : msg('required', f.name));
        continue;
      }
      if (blank(v)) {
        const reason = reasonFor(f);
        if (f.reason_for) continue;  // said on the field it explains
        if (reason && !blank(readValue(reason))) continue;  // no GPS, and why is said
        if (f.required) {
          add(f, reason ? msg('required_or_reason', f.name) : f.widget === 'gps' ? TEXT.gpsNone : f.widget === 'commune' ? TEXT.communeMissing
            : f.widget === 'checkboxes' ? msg('required_multi', f.name)
              : (f.widget === 'radio' || f.widget === 'select' || f.widget === 'yesno') ? msg('required_choice', f.name)
                : msg('required', f.name));
        }
        continue;
      }
      switch (f.type) {
        case 'integer':
          if (typeof v !== 'number' || !Number.isInteger(v)) add(f, msg('integer', f.name, { detail: TEXT.integer }));
          else if (f.range_of === 'age') {
            if (f.min !== null && f.max !== null && !(year - f.max <= v && v <= year - f.min)) {
              add(f, msg('age_range', f.name, { value: v, min: f.min, max: f.max, low: year - f.max, high: year - f.min }));
            }
          } else if ((f.min !== null && v < f.min) || (f.max !== null && v > f.max)) {
            add(f, msg('range', f.name, { value: v, min: f.min ?? '…', max: f.max ?? '…' }));
          }
          break;
        case 'date':
          if (!/^\d{4}-\d{2}-\d{2}$/.test(v)) add(f, msg('bad_date', f.name, { detail: TEXT.badDate }));
          else if (v > today) add(f, msg('future_date', f.name));
          else if (v < spec.rules.earliest_date) add(f, msg('too_early', f.name, { value: v, earliest: showDate(spec.rules.earliest_date) }));
          break;
        case 'text':
          if (f.max_length && v.length > f.max_length) add(f, msg('too_long', f.name, { max: f.max_length }));
          else if (f.format && !new RegExp(f.format.pattern).test([...v].filter(c => !f.format.ignore.includes(c)).join(''))) {
            add(f, msg('format', f.name));
          }
          break;
        case 'select_one':
          if (!f.choices.some(c => c.value === v)) add(f, msg('not_a_choice', f.name, { detail: TEXT.badChoice }));
          break;
        case 'select_multiple':
          if (!v.every(x => f.choices.some(c => c.value === x))) add(f, msg('not_a_choice', f.name, { detail: TEXT.badChoice }));
          break;
        case 'geopoint':
          if (!(isFinite(v.lat) && isFinite(v.lon)) || !insideVietnam(v)) add(f, msg('outside_vietnam', f.name, { lat: v.lat, lon: v.lon }));
          break;
        case 'commune':
          if (!/^[0-9]{5}$/.test(v)) add(f, TEXT.communeMissing);
          break;
        default:
          break;
      }
    }
    if (today < spec.published) errors.push({ field: null, message: msg('clock_before_published', null, { published: showDate(spec.published) }) });
    return errors;
  }
  function insideVietnam(p) {
    const [minx, miny, maxx, maxy] = spec.rules.bbox;
    return minx <= p.lon && p.lon <= maxx && miny <= p.lat && p.lat <= maxy;
  }

  function clearErrors() {
    for (const e of fieldsEl.querySelectorAll('.err')) e.textContent = '';
    for (const w of fieldsEl.querySelectorAll('.field.invalid')) w.classList.remove('invalid');
    for (const c of fieldsEl.querySelectorAll('[aria-invalid]')) c.removeAttribute('aria-invalid');
    $('summary').textContent = '';
  }
  function showErrors(errors) {
    let first = null;
    const general = [];
    for (const e of errors) {
      const box = e.field ? $(errOf(e.field)) : null;
      if (!box) { general.push(e.message); continue; }
      box.textContent = box.textContent ? box.textContent + ' · ' + e.message : e.message;
      const wrap = box.closest('.field');
      wrap.classList.add('invalid');
      const control = wrap.querySelector('input:not([type=hidden]), select, fieldset, button');
      if (control) control.setAttribute('aria-invalid', 'true');
      // Focus goes to something that can take it: a radio of a group, not its fieldset.
      const focusable = wrap.querySelector('input:not([type=hidden]):not([disabled]), select:not([disabled]), button:not([disabled])');
      if (!first) first = focusable || control || wrap;
    }
    $('summary').textContent = [TEXT.summary(errors.length), ...general].join(' ');
    if (first) {
      first.scrollIntoView({ block: 'center' });
      if (typeof first.focus === 'function') first.focus({ preventScroll: true });
    }
  }

  // -------------------------------------------------------------------- GPS
  function getLocation(f) {
    const status = $(idOf(f.name) + '-status');
    const button = $(idOf(f.name) + '-button');
    if (!navigator.geolocation) { status.textContent = TEXT.gpsUnsupported; return; }
    status.textContent = TEXT.gpsWaiting;
    button.disabled = true;
    navigator.geolocation.getCurrentPosition(pos => {
      button.disabled = false;
      const c = pos.coords;
      const point = { lat: +c.latitude.toFixed(7), lon: +c.longitude.toFixed(7), accuracy: Math.round(c.accuracy * 10) / 10 };
      if (c.altitude !== null && c.altitude !== undefined && isFinite(c.altitude)) point.altitude = Math.round(c.altitude * 10) / 10;
      showLocation(f, point);
      saveDraft();
      suggestCommune(f, point);
    }, err => {
      button.disabled = false;
      status.textContent = err.code === 1 ? TEXT.gpsDenied : err.code === 3 ? TEXT.gpsTimeout : TEXT.gpsFailed;
      // No location: the interview is still recorded; the likely reason is offered, the surveyor may change it.
      const reason = reasonFor(f);
      if (reason && blank(readValue(reason)) && !state.location) {
        setValue(reason, err.code === 1 ? 'denied' : 'no_fix');
        refreshVisibility();
        saveDraft();
      }
    }, { enableHighAccuracy: true, timeout: 60000, maximumAge: 0 });
  }
  function showLocation(f, point) {
    state.location = point;
    const id = idOf(f.name);
    $(id).value = point ? JSON.stringify(point) : '';
    $(id + '-button').textContent = point ? TEXT.gpsAgain : TEXT.gpsButton;
    $(id + '-note').textContent = '';
    if (!point) { $(id + '-status').textContent = TEXT.gpsNone; return; }
    const acc = point.accuracy === undefined || point.accuracy === null ? '?' : Math.round(point.accuracy);
    $(id + '-status').textContent = TEXT.gpsShow(point.lat.toFixed(6), point.lon.toFixed(6), acc);
    const limit = spec.rules.gps_accuracy_limit_m;
    if (!insideVietnam(point)) $(id + '-note').textContent = TEXT.gpsOutside;
    else if (limit && point.accuracy > limit) $(id + '-note').textContent = TEXT.gpsCoarse(limit);
  }
  // Which commune covers the fix (when online): offered, never imposed.
  async function suggestCommune(gpsField, point) {
    const communeField = spec.fields.find(f => f.widget === 'commune');
    if (!communeField || !insideVietnam(point)) return;
    let body;
    try {
      const r = await fetchWithTimeout(`/api/v1/locate?lon=${point.lon}&lat=${point.lat}`, {}, SEARCH_TIMEOUT_MS);
      if (!r.ok) return;
      body = await r.json();
    } catch (e) {
      return;
    }
    if (!body.commune || state.location !== point) return;
    const c = { code: body.commune.code, name: body.commune.name, unit_type: body.commune.unit_type,
      parent_code: body.province ? body.province.code : null, structure: body.structure };
    if (body.province) rememberProvinces([{ code: body.province.code, name: body.province.name, unit_type: body.province.unit_type }]);
    rememberCommunes([c]);
    const note = $(idOf(gpsField.name) + '-note');
    if (state.commune && state.commune.code !== c.code) {
      note.textContent = TEXT.gpsElsewhere(communeText(c));
    } else if (!state.commune) {
      note.textContent = '';
      const b = el('button', { type: 'button', class: 'small suggest', text: TEXT.gpsSuggest(communeText(c)) });
      b.addEventListener('click', () => { chooseCommune(communeField, c); b.remove(); saveDraft(); });
      note.append(b);
    }
  }

  // --------------------------------------------------------------- communes
  function rememberCommunes(list) {
    const cache = load(KEY.communes, {});
    for (const c of list) cache[c.code] = { code: c.code, name: c.name, unit_type: c.unit_type, parent_code: c.parent_code, structure: c.structure };
    const codes = Object.keys(cache);
    if (codes.length > MAX_CACHED_COMMUNES) for (const k of codes.slice(0, codes.length - MAX_CACHED_COMMUNES)) delete cache[k];
    store(KEY.communes, cache);
  }
  function rememberProvinces(list) {
    const cache = load(KEY.provinces, {});
    for (const p of list) cache[p.code] = `${p.unit_type} ${p.name}`;
    store(KEY.provinces, cache);
  }
  function communeByCode(code) {
    const seen = load(KEY.communes, {})[code];
    if (seen && seen.name) return seen;
    const area = load(KEY.area, null);
    const u = area && Array.isArray(area.units) ? area.units.find(x => x.level === 'commune' && x.code === code
      && (!area.current || x.structure === area.current)) : null;
    return u || seen || null;
  }
  function communeText(c) {
    if (!c.name) return c.code;
    const province = c.parent_code ? load(KEY.provinces, {})[c.parent_code] : null;
    return `${c.unit_type ? c.unit_type + ' ' : ''}${c.name}${province ? ', ' + province : ''} (${c.code})`;
  }
  async function loadProvinces() {
    if (Object.keys(load(KEY.provinces, {})).length >= 30) return;
    try {
      const r = await fetchWithTimeout('/api/v1/units?level=province&limit=1000', {}, SEND_TIMEOUT_MS);
      if (r.ok) rememberProvinces((await r.json()).features.map(x => x.properties));
    } catch (e) { /* offline: names come later */ }
  }
  function chooseCommune(f, c) {
    state.commune = c;
    const id = idOf(f.name);
    $(id).value = c ? c.code : '';
    $(id + '-chosen').textContent = c ? TEXT.communeChosen(communeText(c)) : '';
    $(id + '-results').textContent = '';
    $(id + '-status').textContent = '';
    if (c) $(id + '-q').value = '';
  }
  function bindCommune(f, search) {
    const id = idOf(f.name);
    let timer = null;
    let seq = 0;
    search.addEventListener('input', () => {
      clearTimeout(timer);
      timer = setTimeout(() => run(++seq), 250);
    });
    search.addEventListener('keydown', e => {
      if (e.key === 'Enter') {  // Enter picks the first match instead of saving the form
        e.preventDefault();
        const first = $(id + '-results').querySelector('button');
        if (first) first.click();
      }
    });
    async function run(n) {
      const q = search.value.trim();
      const results = $(id + '-results');
      const status = $(id + '-status');
      if (fold(q).length < 2) { results.textContent = ''; status.textContent = ''; return; }
      let found = areaMatches(q);
      let more = 0;
      let offline = false;
      if (found) {  // the area is on the phone: no network needed, nor waited for
        more = Math.max(0, found.length - 20);
        found = found.slice(0, 20);
        offline = navigator.onLine === false;
        return show(n, found, more, offline ? TEXT.communeOfflineArea : '');
      }
      status.textContent = TEXT.communeSearching;
      try {
        const r = await fetchWithTimeout(`/api/v1/units?level=commune&limit=20&q=${encodeURIComponent(q)}`, {}, SEARCH_TIMEOUT_MS);
        if (!r.ok) throw new Error(String(r.status));
        const body = await r.json();
        found = body.features.map(x => x.properties);
        more = Math.max(0, (body.numberMatched || 0) - found.length);
        rememberCommunes(found);
        if (found.some(c => !load(KEY.provinces, {})[c.parent_code])) await loadProvinces();
      } catch (e) {
        offline = true;
        const wanted = fold(q);
        const all = Object.values(load(KEY.communes, {}));
        found = all.filter(c => /^[0-9]+$/.test(wanted) ? c.code.startsWith(wanted) : fold(c.name).includes(wanted))
          .sort((a, b) => a.code.localeCompare(b.code));
        more = Math.max(0, found.length - 20);
        found = found.slice(0, 20);
      }
      return show(n, found, more, offline ? TEXT.communeOffline : '');
    }
    function show(n, found, more, note) {
      if (n !== seq) return;  // a newer search is under way
      const results = $(id + '-results');
      results.textContent = '';
      for (const c of found) {
        const b = el('button', { type: 'button', class: 'pick', 'data-code': c.code, text: communeText(c) });
        b.addEventListener('click', () => { chooseCommune(f, c); saveDraft(); keepDefaults(); search.blur(); });
        results.append(el('li', {}, b));
      }
      $(id + '-status').textContent = [note, found.length ? '' : TEXT.communeNone,
        more ? TEXT.communeMore(more) : ''].filter(Boolean).join(' · ');
    }
  }

  // ------------------------------------------------------- kept values, draft
  const surveyorField = () => spec.fields.find(f => f.name === 'surveyor');
  const communeField = () => spec.fields.find(f => f.widget === 'commune');
  // The surveyor and the commune stay from one person to the next (and across reloads).
  function keepDefaults() {
    const s = surveyorField();
    store(KEY.keep, { surveyor: s ? readValue(s) : null, commune: state.commune });
  }
  function collectAll() {
    const values = {};
    for (const f of spec.fields) {
      if (f.widget === 'auto') {
        const named = form.elements.namedItem(f.name);
        if (named && named.value) values[f.name] = named.value;
        continue;
      }
      const v = readValue(f);
      if (!blank(v) && !(f.widget === 'checkbox' && v === false)) values[f.name] = v;
    }
    return values;
  }
  // The draft goes to IndexedDB (on disk, for a phone that dies) and to localStorage, written at once (for a
  // reload right after a change, before the IndexedDB write is done); the newer of the two is restored.
  function saveDraft() {
    const draft = { values: collectAll(), resubmit: state.resubmit, collected_at: state.collectedAt, at: Date.now() };
    if (db) lsStore(KEY.draft, draft);
    return store(KEY.draft, draft);
  }
  function newestDraft() {
    const kept = load(KEY.draft, null);
    const quick = db ? lsLoad(KEY.draft, null) : null;
    if (quick && quick.at && (!kept || !kept.at || quick.at > kept.at)) return quick;
    return kept;
  }
  function fill(values) {
    for (const f of spec.fields) setValue(f, values[f.name] === undefined ? null : values[f.name]);
    refreshVisibility();
  }
  function resetForm() {
    const keep = load(KEY.keep, {});
    const values = { instance_id: newId() };
    if (keep.surveyor) values.surveyor = keep.surveyor;
    const cf = communeField();
    if (keep.commune && cf) { rememberCommunes([keep.commune]); values[cf.name] = keep.commune.code; }
    state.resubmit = null;
    state.collectedAt = null;
    state.location = null;
    fill(values);
    clearErrors();
    saveDraft();
  }

  // ------------------------------------------------------------------- save
  let saving = false;
  async function save() {
    if (saving) return;
    clearErrors();
    const now = new Date();
    const kind = currentKind();
    const errors = validate(kind, now);
    if (errors.length) { showErrors(errors); return; }
    const payload = { form_id: spec.form_id, form_version: spec.version };
    for (const f of spec.fields) {
      if (f.widget === 'auto' || !shown(f, kind) && f.name !== 'kind') continue;
      const v = readValue(f);
      if (!blank(v)) payload[f.name] = v;
    }
    payload.kind = kind;
    const idField = form.elements.namedItem('instance_id');
    payload.instance_id = (idField && idField.value) || newId();
    // A corrected form keeps the time of its interview (set right if the phone's clock was wrong).
    payload.collected_at = state.collectedAt || localIso(now);
    const url = state.resubmit ? `/api/v1/quarantine/${encodeURIComponent(state.resubmit)}/resubmit` : '/api/v1/submissions';
    const item = { id: payload.instance_id, url, payload, who: payload.full_name || '', queued_at: localIso(now) };
    saving = true;
    try {
      // The form is on disk before anything is said or sent.
      if (!(await enqueue(item))) { $('summary').textContent = TEXT.storageFull; return; }
    } finally {
      saving = false;
    }
    keepDefaults();
    notify({ level: 'info', text: TEXT.saved(item.who), id: item.id }, false);
    resetForm();
    renderCount();
    window.scrollTo(0, 0);
    askPersistence();
    flush();
  }

  // ------------------------------------------------------------------ queue
  async function renderCount() {
    const n = (await readQueue()).length;
    $('unsent').textContent = `${TEXT.unsent}: ${n}`;
    $('unsent').classList.toggle('pending', n > 0);
    $('send-now').hidden = n === 0;
  }
  // 'online' | 'offline' | 'slow' (answers too slow to wait for): said only when true.
  function setNet(state) {
    if (state === true) state = 'online';
    if (state === false) state = 'offline';
    if (state === 'online' && navigator.onLine === false) state = 'offline';
    $('net').textContent = state === 'online' ? TEXT.online : state === 'slow' ? TEXT.slow : TEXT.offline;
  }
  async function removeFromQueue(id) {
    await dequeue(id);
    renderCount();
  }

  // One flush at a time (across tabs too); a form saved during a flush gets another one.
  let flushing = null;
  let again = false;
  function flush() {
    if (flushing) { again = true; return flushing; }
    again = false;
    const run = () => sendQueue();
    flushing = (navigator.locks && navigator.locks.request ? navigator.locks.request('labour-survey-flush', run) : run())
      .catch(() => false)
      .then(reachedServer => {
        flushing = null;
        renderCount();
        if (again && reachedServer) flush();
      });
    return flushing;
  }
  function post(item, token) {
    return fetchWithTimeout(item.url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Authorization: 'Bearer ' + token, 'Accept-Language': LANG },
      body: JSON.stringify(item.payload), credentials: 'same-origin', cache: 'no-store',
    }, SEND_TIMEOUT_MS);
  }
  // Why an officer will look at a stored record, in words.
  function flagsOf(record, payload) {
    const flags = [];
    const limit = spec.rules.gps_accuracy_limit_m;
    const acc = payload && payload.location ? Math.round(payload.location.accuracy) : '?';
    if (record.accuracy_flag) flags.push(TEXT.flagAccuracy(acc, limit));
    if (record.mock_location) flags.push(TEXT.flagMock);
    if (record.location_mismatch) flags.push(TEXT.flagMismatch(record.mismatch_distance_m ? Math.round(record.mismatch_distance_m) : null));
    if (record.location_missing_reason) {
      const rf = spec.fields.find(f => f.reason_for);
      const c = rf && rf.choices ? rf.choices.find(x => x.value === record.location_missing_reason) : null;
      flags.push(TEXT.flagNoLocation(c ? choiceLabel(c) : record.location_missing_reason));
    }
    return flags;
  }
  // A 503 (the database restarting) or 429 says in Retry-After when to try again: sooner than the
  // regular flush, never more often than once a second; without it the regular flush tries.
  let retryTimer = null;
  function retryLater(r) {
    const seconds = Number(r.headers && r.headers.get('Retry-After'));
    if (!isFinite(seconds) || seconds <= 0 || retryTimer) return;
    const ms = Math.min(Math.max(seconds * 1000, 1000), FLUSH_EVERY_MS);
    retryTimer = setTimeout(() => { retryTimer = null; flush(); }, ms);
  }
  async function sendQueue() {
    const queue = await readQueue();
    if (!queue.length) return true;
    for (const item of queue) {
      if (!(await readQueue()).some(q => q.id === item.id)) continue;  // sent meanwhile (another tab)
      let r;
      try {
        let token = await accessToken(false);
        if (token === 'offline') return false;
        if (!token) { renderSession(); return false; }  // kept until someone signs in
        r = await post(item, token);
        if (r.status === 401) {  // revoked or expired early: renew once
          token = await accessToken(true);
          if (token === 'offline') return false;
          if (!token) return false;
          r = await post(item, token);
        }
      } catch (e) {
        return false;  // no signal, or too weak: everything is kept for later
      }
      let body = null;
      try { body = await r.json(); } catch (e) { body = null; }
      if (r.status === 201 || r.status === 200) {
        await removeFromQueue(item.id);
        const record = body && body.record ? body.record : {};
        const flags = flagsOf(record, item.payload);
        const text = (r.status === 201 ? TEXT.sent : TEXT.already)(item.who);
        if (flags.length) notify({ level: 'warn', id: item.id, text: text + ' ' + TEXT.flagged, detail: flags }, false);
        else notify({ level: 'ok', id: item.id, text }, false);
      } else if (r.status === 409) {
        await removeFromQueue(item.id);
        notify({ level: 'error', id: item.id, text: TEXT.conflict(item.who), detail: body && body.detail ? [body.detail] : [], payload: item.payload }, true);
      } else if (r.status === 422) {
        await removeFromQueue(item.id);
        const errs = body && Array.isArray(body.errors) ? body.errors : [];
        notify({ level: 'error', id: item.id, text: TEXT.rejected(item.who), errors: errs, clock: clockNote(),
          payload: item.payload, quarantine_id: body ? body.quarantine_id : null }, true);
      } else if (r.status === 403 && !(body && body.quarantine_id)) {
        endSession(TEXT.wrongRole);  // this account may not send: keep the forms for one that may
        return false;
      } else if (r.status === 403) {
        await removeFromQueue(item.id);
        const errs = Array.isArray(body.errors) ? body.errors : [];
        notify({ level: 'error', id: item.id, text: TEXT.outside(item.who), errors: errs, bare: true,
          payload: item.payload, quarantine_id: body.quarantine_id }, true);
      } else if (r.status === 401) {
        return false;
      } else if (r.status >= 500 || r.status === 408 || r.status === 429) {
        retryLater(r);  // the server or its database is in trouble: the form stays queued
        return false;
      } else {
        await removeFromQueue(item.id);
        const detail = body && body.detail ? (typeof body.detail === 'string' ? body.detail : JSON.stringify(body.detail)) : '';
        notify({ level: 'error', id: item.id, text: TEXT.failed(item.who, r.status), detail: detail ? [detail] : [], payload: item.payload }, true);
      }
    }
    return true;
  }
  function fieldLabel(name) {
    const f = spec && spec.fields.find(x => x.name === name);
    return f ? label(f) : name;
  }

  // ---------------------------------------------------------------- notices
  // Problems are kept (with the form) until the surveyor closes them.
  // News (saved, sent) goes after a while; one line per form (`id`).
  const transient = [];
  function notify(n, keep) {
    n.at = Date.now();
    n.key = n.at + '-' + Math.random().toString(36).slice(2, 8);
    const same = transient.findIndex(t => n.id && t.id === n.id);
    if (same >= 0) transient.splice(same, 1);
    if (keep) {
      const kept = load(KEY.notices, []);
      kept.unshift(n);
      store(KEY.notices, kept.slice(0, MAX_NOTICES));
    } else {
      transient.unshift(n);
      transient.splice(3);
      setTimeout(() => {
        const i = transient.indexOf(n);
        if (i >= 0) { transient.splice(i, 1); renderNotices(); }
      }, NEWS_MS);
    }
    renderNotices();
  }
  function renderNotices() {
    const list = $('notices');
    list.textContent = '';
    for (const n of [...load(KEY.notices, []), ...transient]) {
      const li = el('li', { class: 'notice ' + n.level, 'data-key': n.key, role: n.level === 'error' ? 'alert' : null },
        el('p', { text: n.text }));
      // The server's errors are said from the catalogue at display time, in this page's language.
      const lines = [...(n.detail || []), ...(n.errors || []).map(e => (n.bare || !e.field ? '' : fieldLabel(e.field) + ': ') + serverMessage(e))];
      if (n.clock && (n.errors || []).some(e => e.code === 'future_collected' || e.code === 'before_published')) lines.push(n.clock);
      if (lines.length) {
        const ul = el('ul', {});
        for (const d of lines) ul.append(el('li', { text: d }));
        li.append(ul);
      }
      const actions = el('div', { class: 'actions' });
      if (n.payload && n.quarantine_id) {
        const fix = el('button', { type: 'button', class: 'small', text: TEXT.fix });
        fix.addEventListener('click', () => correct(n));
        actions.append(fix);
      }
      const close = el('button', { type: 'button', class: 'small', 'aria-label': TEXT.dismiss, text: '✕ ' + TEXT.dismiss });
      close.addEventListener('click', () => dismiss(n.key));
      actions.append(close);
      li.append(actions);
      list.append(li);
    }
  }
  function dismiss(key) {
    store(KEY.notices, load(KEY.notices, []).filter(n => n.key !== key));
    const i = transient.findIndex(n => n.key === key);
    if (i >= 0) transient.splice(i, 1);
    renderNotices();
  }
  // Load a rejected form back into the form; saving it resubmits it for its quarantine entry.
  async function correct(n) {
    const values = Object.assign({}, n.payload);
    const cf = communeField();
    if (cf && values[cf.name] && !communeByCode(values[cf.name])) rememberCommunes([{ code: values[cf.name] }]);
    clearErrors();
    fill(values);
    state.resubmit = n.quarantine_id;
    // The form keeps the time of its interview; when the phone's clock was the problem, that time is set
    // right by how far the clock was off at the server's answer (or, unmeasured, becomes the time of saving).
    const errors = n.errors || [];
    const clockWrong = errors.some(e => e.code === 'future_collected' || e.code === 'before_published');
    const c = load(KEY.clock, null);
    let at = n.payload.collected_at || null;
    if (clockWrong) at = at && c && Math.abs(c.offset) >= 120000 ? localIso(new Date(Date.parse(at) - c.offset)) : null;
    state.collectedAt = at;
    dismiss(n.key);
    await saveDraft();
    const marks = errors.filter(e => e.field && e.field !== 'collected_at' && $(errOf(e.field))).map(e => ({ field: e.field, message: serverMessage(e) }));
    if (marks.length) showErrors(marks);
    else form.scrollIntoView();
    $('summary').textContent = TEXT.fixing + (marks.length ? ' ' + TEXT.fixThese : '');
  }

  // ------------------------------------------------------------------ start
  // The page's version covers the form: a stored form of the same version is the same, and asks for nothing.
  async function loadSpec() {
    const kept = load(KEY.spec, null);
    if (kept && kept._v === VERSION && VERSION) return kept;
    try {
      const r = await fetchWithTimeout(SCOPE + '/form.json', {}, SEND_TIMEOUT_MS);
      if (!r.ok) throw new Error(String(r.status));
      const s = await r.json();
      s._v = VERSION;
      store(KEY.spec, s);
      return s;
    } catch (e) {
      return kept;  // offline without a service worker: the last one seen
    }
  }

  // The units of the surveyor's area (both structures), kept after sign-in so that the commune search works
  // with no signal from the first day; asked again with its ETag (304) when there is signal.
  async function loadArea() {
    if (!session() || navigator.onLine === false) return;
    const token = await accessToken(false);
    if (!token || token === 'offline') return;
    const old = load(KEY.area, null);
    const headers = { Authorization: 'Bearer ' + token };
    if (old && old.etag) headers['If-None-Match'] = old.etag;
    let r;
    try {
      r = await fetchWithTimeout('/api/v1/auth/me/units', { headers, cache: 'no-store' }, SEND_TIMEOUT_MS);
    } catch (e) {
      return;
    }
    if (!r.ok) return;  // 304: what the phone has is current
    let body;
    try { body = await r.json(); } catch (e) { return; }
    const at = Object.fromEntries(body.columns.map((c, i) => [c, i]));
    const units = body.units.map(u => ({ structure: u[at.structure], code: u[at.code], name: u[at.name], unit_type: u[at.unit_type],
      level: u[at.level], parent_code: u[at.parent_code], folded: fold(u[at.name] || '') }));
    await store(KEY.area, { version: body.version, etag: r.headers.get('ETag'), current: body.current_structure, units });
    rememberProvinces(units.filter(u => u.level === 'province'));
  }
  // Communes of the area matching a search (null when no area is kept).
  function areaMatches(q) {
    const area = load(KEY.area, null);
    if (!area || !Array.isArray(area.units)) return null;
    const wanted = fold(q);
    const digits = /^[0-9]+$/.test(wanted);
    return area.units.filter(u => u.level === 'commune' && (!area.current || u.structure === area.current)
      && (digits ? u.code.startsWith(wanted) : u.folded.includes(wanted)))
      .sort((a, b) => (a.folded.startsWith(wanted) ? 0 : 1) - (b.folded.startsWith(wanted) ? 0 : 1) || a.code.localeCompare(b.code));
  }

  async function start() {
    await openStorage();
    renderCount();
    renderNotices();
    renderSession();
    $('signin').addEventListener('submit', signIn);
    $('signout').addEventListener('click', () => endSession());
    setNet(navigator.onLine !== false);
    spec = await loadSpec();
    if (!spec) { fieldsEl.textContent = TEXT.loadFailed; return; }
    build();
    renderNotices();  // the server's errors, now said from the catalogue
    const draft = newestDraft();
    if (draft && draft.values && draft.values.instance_id) {
      const cf = communeField();
      const keep = load(KEY.keep, {});
      if (keep.commune) rememberCommunes([keep.commune]);
      if (cf && draft.values[cf.name] && !communeByCode(draft.values[cf.name])) rememberCommunes([{ code: draft.values[cf.name] }]);
      fill(draft.values);
      state.resubmit = draft.resubmit || null;
      state.collectedAt = draft.collected_at || null;
    } else {
      resetForm();
    }
    form.addEventListener('change', e => {
      if (e.target && e.target.name === 'kind') clearErrors();
      refreshVisibility();
      saveDraft();
      if (e.target && e.target.name === 'surveyor') keepDefaults();
    });
    form.addEventListener('input', () => saveDraft());
    form.addEventListener('submit', e => { e.preventDefault(); save(); });
    $('send-now').addEventListener('click', () => flush());
    window.addEventListener('online', () => { setNet(true); flush(); });
    window.addEventListener('offline', () => setNet(false));
    document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') flush(); });
    setInterval(flush, FLUSH_EVERY_MS);
    document.body.classList.add('ready');
    loadProvinces();
    loadArea();
    flush();
  }

  if ('serviceWorker' in navigator) {
    window.addEventListener('load', () => {
      navigator.serviceWorker.register(SCOPE + '/sw.js', { scope: SCOPE }).catch(() => null);
    });
  }
  start();
})();
