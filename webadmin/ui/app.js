// Roost administration: a single page over the JSON API of docs/api.md.
// No framework, no inline script (the Content-Security-Policy forbids it),
// and no innerHTML with data: every text goes in through textContent.
'use strict';

const state = { me: null, csrf: '' };
const main = document.getElementById('main');

// ---- small DOM helpers ----

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'text') el.textContent = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

const svgNS = 'http://www.w3.org/2000/svg';
function s(tag, attrs, ...kids) {
  const el = document.createElementNS(svgNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const kid of kids) el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  return el;
}

function fmtBytes(n) {
  if (!n) return '0 B';
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(n < 10 ? 1 : 0) : n) + ' ' + u[i];
}

function fmtDuration(sec) {
  const d = Math.floor(sec / 86400), hr = Math.floor(sec % 86400 / 3600), m = Math.floor(sec % 3600 / 60);
  if (d) return d + ' d ' + hr + ' h';
  if (hr) return hr + ' h ' + m + ' min';
  return m + ' min';
}

let toastTimer = 0;
function toast(msg) {
  const t = document.getElementById('toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => t.classList.remove('show'), 4000);
}

// ---- the API ----

async function api(method, path, body) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && state.csrf) headers['X-CSRF-Token'] = state.csrf;
  let resp;
  try {
    resp = await fetch(path, {
      method, headers, credentials: 'same-origin',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    return { status: 0, data: { error: 'the server cannot be reached' } };
  }
  let data = {};
  try { data = await resp.json(); } catch (e) { data = {}; }
  if (resp.status === 401 && !data.field && state.me) {
    state.me = null;
    state.csrf = '';
    showSignIn('Your session has ended; please sign in again.');
  }
  return { status: resp.status, data };
}

// ---- forms: a label on every control, errors beside their field ----

function field(label, name, opts = {}) {
  const id = 'f-' + name + '-' + Math.random().toString(36).slice(2, 7);
  const errId = id + '-err';
  let input;
  if (opts.type === 'textarea') {
    input = h('textarea', { id, name, rows: opts.rows || 3, 'aria-describedby': errId });
  } else if (opts.type === 'select') {
    input = h('select', { id, name, 'aria-describedby': errId },
      opts.options.map(([v, t]) => h('option', { value: v, text: t })));
  } else if (opts.type === 'checkbox') {
    input = h('input', { id, name, type: 'checkbox', 'aria-describedby': errId });
    input.checked = !!opts.value;
    return h('div', { class: 'field check' }, input, h('label', { for: id, text: label }),
      h('span', { class: 'error', id: errId }));
  } else {
    input = h('input', {
      id, name, type: opts.type || 'text', autocomplete: opts.autocomplete || 'off',
      placeholder: opts.placeholder, required: !!opts.required, inputmode: opts.inputmode,
    });
    input.setAttribute('aria-describedby', errId);
  }
  if (opts.value !== undefined && opts.type !== 'checkbox') input.value = opts.value;
  return h('div', { class: 'field' }, h('label', { for: id, text: label }), input,
    opts.hint ? h('span', { class: 'hint', text: opts.hint }) : null,
    h('span', { class: 'error', id: errId }));
}

function clearErrors(form) {
  form.querySelectorAll('.error').forEach((e) => { e.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((e) => e.removeAttribute('aria-invalid'));
}

// Puts the API's error beside the field it names, else in the form's alert.
function showError(form, data) {
  const msg = data.error || 'something went wrong';
  const input = data.field ? form.querySelector('[name="' + CSS.escape(data.field) + '"]') : null;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    const err = document.getElementById(input.getAttribute('aria-describedby'));
    if (err) err.textContent = msg;
    input.focus();
    return;
  }
  const alert = form.querySelector('.form-error');
  if (alert) alert.textContent = msg;
  else toast(msg);
}

function formValues(form) {
  const v = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    v[el.name] = el.type === 'checkbox' ? el.checked : el.value;
  }
  return v;
}

function makeForm(title, fields, submitText, onSubmit) {
  const form = h('form', { class: 'card form', novalidate: true },
    title ? h('h2', { text: title }) : null,
    h('div', { class: 'fields' }, fields),
    h('p', { class: 'error form-error', role: 'alert' }),
    h('div', { class: 'actions' }, h('button', { type: 'submit', text: submitText })));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    form.querySelector('.form-error').textContent = '';
    const btn = form.querySelector('button[type=submit]');
    btn.disabled = true;
    try { await onSubmit(formValues(form), form); } finally { btn.disabled = false; }
  });
  return form;
}

// ---- dialog: confirmation of destructive actions, and edit forms ----

const dlg = document.getElementById('dialog');
function openDialog(title, body, okText, onOk, danger) {
  document.getElementById('dialog-title').textContent = title;
  const b = document.getElementById('dialog-body');
  b.replaceChildren(...[].concat(body));
  const err = document.getElementById('dialog-error');
  err.textContent = '';
  const ok = document.getElementById('dialog-ok');
  ok.textContent = okText;
  ok.classList.toggle('danger', !!danger);
  const form = document.getElementById('dialog-form');
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    clearErrors(form);
    err.textContent = '';
    ok.disabled = true;
    try {
      const r = await onOk(formValues(form), form);
      if (r === true) dlg.close();
    } finally { ok.disabled = false; }
  };
  document.getElementById('dialog-cancel').onclick = () => dlg.close();
  dlg.showModal();
  const first = b.querySelector('input, select, textarea');
  (first || ok).focus();
}

// Asks to type the name of what is removed (the API checks it too).
function confirmRemove(what, name, extra, run) {
  openDialog('Remove ' + what + ' ' + name + '?', [
    h('p', { text: 'This cannot be undone. Type ' + name + ' to confirm.' }),
    field('Name to confirm', 'confirm', { required: true }),
    extra || null,
  ], 'Remove', async (v, form) => {
    if (v.confirm.trim().toLowerCase() !== name.toLowerCase()) {
      showError(form, { field: 'confirm', error: 'type ' + name + ' exactly' });
      return false;
    }
    const r = await run(v);
    if (r.status >= 200 && r.status < 300) { toast(what[0].toUpperCase() + what.slice(1) + ' ' + name + ' removed'); return true; }
    showError(form, r.data.field === 'confirm' ? { error: r.data.error } : r.data);
    return false;
  }, true);
}

// ---- paging and sortable tables ----

function pager(p, total, onChange) {
  const from = total ? p.offset + 1 : 0, to = Math.min(p.offset + p.limit, total);
  const prev = h('button', { type: 'button', class: 'secondary', text: '‹ Previous', disabled: p.offset === 0,
    onclick: () => { p.offset = Math.max(0, p.offset - p.limit); onChange(); } });
  const next = h('button', { type: 'button', class: 'secondary', text: 'Next ›', disabled: to >= total,
    onclick: () => { p.offset += p.limit; onChange(); } });
  const size = field('Per page', 'per-page', { type: 'select', options: [['25', '25'], ['50', '50'], ['100', '100'], ['500', '500']], value: String(p.limit) });
  size.querySelector('select').addEventListener('change', (e) => { p.limit = +e.target.value; p.offset = 0; onChange(); });
  return h('div', { class: 'pager' }, h('span', { class: 'count', text: from + '–' + to + ' of ' + total }), prev, next, size);
}

function table(cols, rows, sort, onSort) {
  const head = h('tr', {}, cols.map((c) => {
    if (!c.sort || !sort) return h('th', { scope: 'col', text: c.label });
    const active = sort.key === c.sort;
    const btn = h('button', { type: 'button', class: 'sort', text: c.label + (active ? (sort.order === 'asc' ? ' ▲' : ' ▼') : ''),
      onclick: () => { sort.order = active && sort.order === 'asc' ? 'desc' : 'asc'; sort.key = c.sort; onSort(); } });
    return h('th', { scope: 'col', 'aria-sort': active ? (sort.order === 'asc' ? 'ascending' : 'descending') : 'none' }, btn);
  }));
  const body = rows.length ? rows.map((r) => h('tr', {}, cols.map((c) => h('td', { 'data-label': c.label }, c.cell(r)))))
    : [h('tr', {}, h('td', { colspan: cols.length, class: 'empty', text: 'Nothing here yet.' }))];
  return h('div', { class: 'table-wrap' }, h('table', {}, h('thead', {}, head), h('tbody', {}, body)));
}

function page(title, ...kids) {
  main.replaceChildren(h('h1', { text: title }), ...kids);
  document.title = title + ' · Roost';
}

// ---- sign-in and first-run setup ----

function showSignIn(message) {
  document.getElementById('nav').hidden = true;
  document.getElementById('who').hidden = true;
  const form = makeForm(null, [
    field('Mail address', 'address', { type: 'email', autocomplete: 'username', required: true }),
    field('Password', 'password', { type: 'password', autocomplete: 'current-password', required: true }),
  ], 'Sign in', async (v, f) => {
    const r = await api('POST', '/api/v1/session', { address: v.address, password: v.password });
    if (r.status !== 200) { showError(f, r.data.field === 'password' && r.status === 401 ? { error: r.data.error } : r.data); return; }
    signedIn(r.data);
  });
  form.classList.add('signin');
  page('Sign in', message ? h('p', { class: 'notice', role: 'status', text: message }) : null, form);
  form.querySelector('input').focus();
}

function showSetup(token) {
  document.getElementById('nav').hidden = true;
  const form = makeForm('Create the first administrator', [
    field('Mail address', 'address', { type: 'email', required: true, hint: 'Its domain is added if it is new.' }),
    field('Full name', 'display_name'),
    field('Password', 'password', { type: 'password', autocomplete: 'new-password', required: true }),
  ], 'Create administrator', async (v, f) => {
    const r = await api('POST', '/api/v1/setup', { token, address: v.address, display_name: v.display_name, password: v.password });
    if (r.status !== 200) { showError(f, r.data); return; }
    history.replaceState(null, '', '#/dashboard');
    signedIn(r.data);
  });
  page('Welcome to Roost', h('p', { text: 'This one-time link creates the first administrator account.' }), form);
}

function signedIn(session) {
  state.me = session;
  state.csrf = session.csrf_token;
  document.getElementById('nav').hidden = false;
  document.getElementById('who').hidden = false;
  document.getElementById('who-name').textContent = session.address;
  document.querySelectorAll('#nav [data-admin]').forEach((li) => { li.hidden = !session.admin; });
  const want = location.hash.startsWith('#/') ? location.hash : '';
  if (!want || (!session.admin && want !== '#/me')) location.hash = session.admin ? '#/dashboard' : '#/me';
  else route();
}

async function signOut() {
  await api('DELETE', '/api/v1/session');
  state.me = null;
  state.csrf = '';
  history.replaceState(null, '', '#/');
  showSignIn('You are signed out.');
}

// ---- dashboard ----

function figure(label, value) {
  return h('div', { class: 'figure' }, h('span', { class: 'value', text: value }), h('span', { class: 'label', text: label }));
}

// Mail in and out per hour for the last 24 h, as grouped SVG bars.
function chart(hours) {
  const W = 720, H = 200, pad = 28, max = Math.max(1, ...hours.map((x) => Math.max(x.received, x.sent)));
  const bw = (W - pad * 2) / hours.length;
  const svg = s('svg', { viewBox: '0 0 ' + W + ' ' + (H + 24), role: 'img', class: 'chart',
    'aria-label': 'Mail received and sent per hour over the last 24 hours' });
  svg.append(s('line', { x1: pad, y1: H, x2: W - pad, y2: H, class: 'axis' }));
  svg.append(s('text', { x: 2, y: 12, class: 'tick' }, String(max)));
  svg.append(s('text', { x: 2, y: H, class: 'tick' }, '0'));
  hours.forEach((x, i) => {
    const x0 = pad + i * bw;
    const hr = (x.received / max) * (H - 16), hs = (x.sent / max) * (H - 16);
    const when = new Date(x.start * 1000);
    const hh = String(when.getHours()).padStart(2, '0') + ':00';
    const r = s('rect', { x: x0 + 1, y: H - hr, width: bw / 2 - 1, height: hr, class: 'in' });
    r.append(s('title', {}, hh + ': ' + x.received + ' received'));
    const t = s('rect', { x: x0 + bw / 2, y: H - hs, width: bw / 2 - 1, height: hs, class: 'out' });
    t.append(s('title', {}, hh + ': ' + x.sent + ' sent'));
    svg.append(r, t);
    if (i % 3 === 0) svg.append(s('text', { x: x0, y: H + 16, class: 'tick' }, hh));
  });
  const legend = h('p', { class: 'legend' }, h('span', { class: 'key in' }), ' received  ', h('span', { class: 'key out' }), ' sent');
  return h('div', { class: 'card' }, h('h2', { text: 'Mail per hour, last 24 hours' }), svg, legend);
}

function bar(used, total) {
  const b = h('span', { class: 'bar' }, h('span', { class: 'fill' }));
  b.firstChild.style.width = (total ? Math.min(100, (used / total) * 100) : 0) + '%';
  return b;
}

async function showDashboard() {
  const [st, hr, dm] = await Promise.all([api('GET', '/api/v1/status'), api('GET', '/api/v1/stats/hourly'), api('GET', '/api/v1/domains')]);
  if (st.status !== 200) return page('Dashboard', h('p', { class: 'error', text: st.data.error }));
  const d = st.data;
  const conns = Object.entries(d.connections).filter(([, n]) => n > 0).map(([p, n]) => p + ' ' + n).join(', ') || 'none';
  const figs = h('div', { class: 'figures' },
    figure('received, 24 h', d.messages_24h.received), figure('sent, 24 h', d.messages_24h.sent),
    figure('in the queue', d.queue_length), figure('storage used', fmtBytes(d.storage.used_bytes)),
    figure('accounts', d.accounts), figure('domains', d.domains),
    figure('open connections', d.connections_open), figure('up for', fmtDuration(d.uptime_s)));
  const doms = (dm.data.items || []);
  const maxUsed = Math.max(1, ...doms.map((x) => x.used_bytes));
  const storage = h('div', { class: 'card' }, h('h2', { text: 'Storage per domain' }),
    table([{ label: 'Domain', cell: (x) => x.name }, { label: 'Used', cell: (x) => h('span', {}, bar(x.used_bytes, maxUsed), ' ', fmtBytes(x.used_bytes)) },
      { label: 'Accounts', cell: (x) => x.accounts }], doms));
  const top = h('div', { class: 'card' }, h('h2', { text: 'Largest mailboxes' }),
    table([{ label: 'Account', cell: (x) => x.address }, { label: 'Used', cell: (x) => fmtBytes(x.used_bytes) },
      { label: 'Quota', cell: (x) => x.quota_bytes ? fmtBytes(x.quota_bytes) : 'unlimited' }], d.storage.top_accounts));
  page('Dashboard', h('p', { class: 'sub', text: 'Roost ' + d.version + ' on ' + d.hostname + ' · connections now: ' + conns }),
    figs, hr.status === 200 ? chart(hr.data.hours) : null, h('div', { class: 'two' }, storage, top));
}

// ---- domains ----

function copyButton(text) {
  return h('button', { type: 'button', class: 'secondary small', text: 'Copy', onclick: async (e) => {
    try { await navigator.clipboard.writeText(text); toast('Copied'); } catch (err) {
      const sel = window.getSelection(), range = document.createRange();
      range.selectNodeContents(e.target.parentNode.previousSibling);
      sel.removeAllRanges(); sel.addRange(range); toast('Selected: press Ctrl+C to copy');
    }
  } });
}

async function showDns(name, into) {
  const r = await api('GET', '/api/v1/domains/' + encodeURIComponent(name) + '/dns');
  if (r.status !== 200) { into.replaceChildren(h('p', { class: 'error', text: r.data.error })); return; }
  // A zone file's TXT strings hold at most 255 bytes each (an RSA key's record is longer).
  const txt = (v) => (v.match(/[\s\S]{1,255}/g) || ['']).map((s) => '"' + s + '"').join(' ');
  const zone = r.data.records.map((x) => x.name + ' IN ' + x.type + ' ' + (x.type === 'TXT' ? txt(x.value) : x.value)).join('\n');
  into.replaceChildren(h('h3', { text: 'DNS records for ' + name }),
    h('p', { class: 'hint', text: 'Publish these at your DNS provider.' }),
    table([{ label: 'Name', cell: (x) => h('code', { text: x.name }) }, { label: 'Type', cell: (x) => x.type },
      { label: 'Value', cell: (x) => h('span', { class: 'dns-value' }, h('code', { class: 'value', text: x.value }), h('span', {}, copyButton(x.value))) },
      { label: 'Why', cell: (x) => x.purpose }], r.data.records),
    h('div', { class: 'field' }, h('label', { for: 'zone-' + name, text: 'All records, zone-file form' }),
      h('textarea', { id: 'zone-' + name, readonly: true, rows: r.data.records.length + 1, class: 'zone', text: zone })),
    copyButton(zone));
}

async function showDomains() {
  const r = await api('GET', '/api/v1/domains');
  const dnsBox = h('div', { class: 'card dns', id: 'dns', hidden: true });
  const add = makeForm('Add a domain', [field('Domain name', 'name', { required: true, placeholder: 'example.org' })], 'Add domain', async (v, f) => {
    const a = await api('POST', '/api/v1/domains', { name: v.name.trim() });
    if (a.status !== 201) return showError(f, a.data);
    toast('Domain ' + a.data.name + ' added');
    await showDomains();
    const box = document.getElementById('dns');
    box.hidden = false;
    await showDns(a.data.name, box);
  });
  const rows = r.data.items || [];
  const list = table([
    { label: 'Domain', cell: (x) => x.name }, { label: 'Accounts', cell: (x) => x.accounts },
    { label: 'Aliases', cell: (x) => x.aliases }, { label: 'Storage', cell: (x) => fmtBytes(x.used_bytes) },
    { label: 'Actions', cell: (x) => h('span', { class: 'row-actions' },
      h('button', { type: 'button', class: 'secondary small', text: 'DNS records', 'aria-label': 'DNS records of ' + x.name,
        onclick: () => { dnsBox.hidden = false; showDns(x.name, dnsBox); } }),
      h('button', { type: 'button', class: 'danger small', text: 'Remove', 'aria-label': 'Remove ' + x.name,
        onclick: () => confirmRemove('domain', x.name,
          field('Also remove its ' + x.accounts + ' accounts (with their mail) and ' + x.aliases + ' aliases', 'force', { type: 'checkbox' }),
          async (v) => { const d = await api('DELETE', '/api/v1/domains/' + encodeURIComponent(x.name) + '?confirm=' + encodeURIComponent(v.confirm) + (v.force ? '&force=yes' : '')); if (d.status === 200) showDomains(); return d; }) })) },
  ], rows);
  page('Domains', add, h('div', { class: 'card' }, h('h2', { text: 'Domains' }), list), dnsBox);
}

// ---- accounts ----

const acctView = { q: '', domain: '', offset: 0, limit: 50, sort: { key: 'address', order: 'asc' } };

function quotaText(x) { return fmtBytes(x.used_bytes) + ' of ' + (x.quota_bytes ? fmtBytes(x.quota_bytes) : 'unlimited'); }

function editAccount(x) {
  openDialog('Edit ' + x.address, [
    field('Full name', 'display_name', { value: x.display_name }),
    field('Quota', 'quota_bytes', { value: x.quota_bytes ? fmtQuota(x.quota_bytes) : '0', hint: 'Like 500M or 2G; 0 is unlimited.' }),
    field('New password', 'password', { type: 'password', autocomplete: 'new-password', hint: 'Leave empty to keep the current one.' }),
    field('Administrator', 'admin', { type: 'checkbox', value: x.admin }),
    field('Disabled (cannot sign in or receive mail)', 'disabled', { type: 'checkbox', value: x.disabled }),
  ], 'Save', async (v, form) => {
    const body = { display_name: v.display_name, quota_bytes: v.quota_bytes.trim(), admin: v.admin, disabled: v.disabled };
    if (v.password) body.password = v.password;
    const r = await api('PATCH', '/api/v1/accounts/' + encodeURIComponent(x.address), body);
    if (r.status !== 200) { showError(form, r.data); return false; }
    toast('Saved ' + x.address);
    loadAccounts();
    return true;
  });
}

function fmtQuota(n) {
  for (const [u, f] of [['T', 2 ** 40], ['G', 2 ** 30], ['M', 2 ** 20], ['K', 1024]]) if (n % f === 0) return (n / f) + u;
  return String(n);
}

let acctTimer = 0;
async function loadAccounts() {
  const box = document.getElementById('accounts-list');
  if (!box) return;
  const v = acctView;
  const qs = new URLSearchParams({ q: v.q, domain: v.domain, offset: v.offset, limit: v.limit, sort: v.sort.key, order: v.sort.order });
  const r = await api('GET', '/api/v1/accounts?' + qs);
  if (r.status !== 200) { box.replaceChildren(h('p', { class: 'error', text: r.data.error })); return; }
  box.replaceChildren(
    table([
      { label: 'Address', sort: 'address', cell: (x) => x.address },
      { label: 'Name', sort: 'display_name', cell: (x) => x.display_name },
      { label: 'Storage', sort: 'used_bytes', cell: (x) => h('span', {}, bar(x.used_bytes, x.quota_bytes), ' ', quotaText(x)) },
      { label: 'Status', cell: (x) => [x.admin ? 'admin' : '', x.disabled ? 'disabled' : 'active'].filter(Boolean).join(', ') },
      { label: 'Actions', cell: (x) => h('span', { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary small', text: 'Edit', 'aria-label': 'Edit ' + x.address, onclick: () => editAccount(x) }),
        h('button', { type: 'button', class: 'danger small', text: 'Remove', 'aria-label': 'Remove ' + x.address,
          onclick: () => confirmRemove('account', x.address, h('p', { text: 'Its mailboxes and all its mail are deleted.' }),
            async (c) => { const d = await api('DELETE', '/api/v1/accounts/' + encodeURIComponent(x.address) + '?confirm=' + encodeURIComponent(c.confirm)); if (d.status === 200) loadAccounts(); return d; }) })) },
    ], r.data.items, v.sort, () => { v.offset = 0; loadAccounts(); }),
    pager(v, r.data.total, loadAccounts));
}

async function showAccounts() {
  const doms = await api('GET', '/api/v1/domains');
  const add = makeForm('Add an account', [
    field('Mail address', 'address', { type: 'email', required: true, placeholder: 'name@example.org' }),
    field('Full name', 'display_name'),
    field('Password', 'password', { type: 'password', autocomplete: 'new-password', required: true }),
    field('Quota', 'quota_bytes', { value: '0', hint: 'Like 500M or 2G; 0 is unlimited.' }),
  ], 'Add account', async (v, f) => {
    const r = await api('POST', '/api/v1/accounts', { address: v.address.trim(), display_name: v.display_name, password: v.password, quota_bytes: v.quota_bytes.trim() || '0' });
    if (r.status !== 201) return showError(f, r.data);
    toast('Account ' + r.data.address + ' added');
    f.reset();
    loadAccounts();
  });
  const search = field('Search', 'q', { type: 'search', value: acctView.q, placeholder: 'address or name' });
  search.querySelector('input').addEventListener('input', (e) => {
    clearTimeout(acctTimer);
    acctTimer = setTimeout(() => { acctView.q = e.target.value; acctView.offset = 0; loadAccounts(); }, 250);
  });
  const domSel = field('Domain', 'domain', { type: 'select', value: acctView.domain,
    options: [['', 'All domains']].concat((doms.data.items || []).map((d) => [d.name, d.name])) });
  domSel.querySelector('select').addEventListener('change', (e) => { acctView.domain = e.target.value; acctView.offset = 0; loadAccounts(); });
  // The column headers sort too; this control also works on a phone, where they are hidden.
  const sortSel = field('Sort by', 'sort', { type: 'select', value: acctView.sort.key + ' ' + acctView.sort.order, options: [
    ['address asc', 'Address'], ['display_name asc', 'Name'], ['used_bytes desc', 'Storage used, most first'],
    ['quota_bytes desc', 'Quota, largest first'], ['created_at desc', 'Newest first']] });
  sortSel.querySelector('select').addEventListener('change', (e) => {
    const [key, order] = e.target.value.split(' ');
    acctView.sort = { key, order };
    acctView.offset = 0;
    loadAccounts();
  });
  page('Accounts', add, h('div', { class: 'card' }, h('h2', { text: 'Accounts' }),
    h('div', { class: 'filters', role: 'search' }, search, domSel, sortSel), h('div', { id: 'accounts-list' })));
  await loadAccounts();
}

// ---- aliases and distribution lists ----

const aliasView = { q: '', offset: 0, limit: 50 };

async function loadAliases() {
  const box = document.getElementById('aliases-list');
  if (!box) return;
  const qs = new URLSearchParams({ q: aliasView.q, offset: aliasView.offset, limit: aliasView.limit });
  const r = await api('GET', '/api/v1/aliases?' + qs);
  if (r.status !== 200) { box.replaceChildren(h('p', { class: 'error', text: r.data.error })); return; }
  box.replaceChildren(table([
    { label: 'Address', cell: (x) => x.catch_all ? x.address + ' (catch-all)' : x.address },
    { label: 'Delivers to', cell: (x) => h('ul', { class: 'chips' }, x.targets.map((t) => h('li', {}, t,
      h('button', { type: 'button', class: 'chip-x', 'aria-label': 'Remove ' + t + ' from ' + x.address, text: '×',
        onclick: () => openDialog('Remove ' + t + ' from ' + x.address + '?', [h('p', { text: x.targets.length === 1 ? 'It is the last target: the alias goes too.' : 'Mail to ' + x.address + ' will no longer reach ' + t + '.' })], 'Remove',
          async () => { const d = await api('DELETE', '/api/v1/aliases/' + encodeURIComponent(x.address) + '/targets/' + encodeURIComponent(t)); if (d.status !== 200) { document.getElementById('dialog-error').textContent = d.data.error; return false; } loadAliases(); return true; }, true) }))) ) },
    { label: 'Actions', cell: (x) => h('button', { type: 'button', class: 'danger small', text: 'Remove', 'aria-label': 'Remove ' + x.address,
      onclick: () => confirmRemove('alias', x.address, null, async (c) => { const d = await api('DELETE', '/api/v1/aliases/' + encodeURIComponent(x.address) + '?confirm=' + encodeURIComponent(c.confirm)); if (d.status === 200) loadAliases(); return d; }) }) },
  ], r.data.items), pager(aliasView, r.data.total, loadAliases));
}

async function showAliases() {
  const add = makeForm('Add an alias or list', [
    field('Address', 'address', { required: true, placeholder: 'sales@example.org', hint: '@example.org alone catches all unknown addresses of the domain.' }),
    field('Delivers to', 'targets', { type: 'textarea', required: true, hint: 'One or more addresses, separated by commas or new lines. Adding to an existing alias extends it.' }),
  ], 'Add', async (v, f) => {
    const r = await api('POST', '/api/v1/aliases', { address: v.address.trim(), targets: v.targets });
    if (r.status !== 201) return showError(f, r.data);
    toast('Alias ' + r.data.address + ' saved');
    f.reset();
    loadAliases();
  });
  const search = field('Search', 'q', { type: 'search', value: aliasView.q, placeholder: 'address or target' });
  search.querySelector('input').addEventListener('input', (e) => {
    clearTimeout(acctTimer);
    acctTimer = setTimeout(() => { aliasView.q = e.target.value; aliasView.offset = 0; loadAliases(); }, 250);
  });
  page('Aliases & lists', add, h('div', { class: 'card' }, h('h2', { text: 'Aliases and distribution lists' }),
    h('div', { class: 'filters', role: 'search' }, search), h('div', { id: 'aliases-list' })));
  await loadAliases();
}

// ---- queue ----

const queueView = { offset: 0, limit: 50 };

async function showQueue() {
  const qs = new URLSearchParams({ offset: queueView.offset, limit: queueView.limit });
  const r = await api('GET', '/api/v1/queue?' + qs);
  if (r.status === 404) return page('Queue', h('p', { text: 'This version of Roost has no outbound queue.' }));
  if (r.status !== 200) return page('Queue', h('p', { class: 'error', text: r.data.error }));
  const act = async (x, what) => {
    const d = what === 'retry' ? await api('POST', '/api/v1/queue/' + x.id + '/retry', {})
      : await api('DELETE', '/api/v1/queue/' + x.id + '?confirm=' + x.id);
    toast(d.status === 200 ? (what === 'retry' ? 'Retrying message ' + x.id : 'Message ' + x.id + ' deleted') : d.data.error);
    showQueue();
  };
  page('Queue', h('p', { class: 'sub', text: 'Outgoing mail waiting for the remote server. Roost retries on its own; a message is returned to its sender when it gives up.' }),
    h('div', { class: 'card' }, table([
      { label: 'Id', cell: (x) => x.id }, { label: 'From', cell: (x) => x.sender || '<>' },
      { label: 'To', cell: (x) => x.recipients }, { label: 'Age', cell: (x) => fmtDuration(x.age_s) },
      { label: 'Attempts', cell: (x) => x.attempts },
      { label: 'Next try', cell: (x) => x.next_attempt_in_s <= 0 ? 'now' : 'in ' + fmtDuration(x.next_attempt_in_s) },
      { label: 'Last error', cell: (x) => x.last_error },
      { label: 'Actions', cell: (x) => h('span', { class: 'row-actions' },
        h('button', { type: 'button', class: 'secondary small', text: 'Retry now', 'aria-label': 'Retry message ' + x.id, onclick: () => act(x, 'retry') }),
        h('button', { type: 'button', class: 'danger small', text: 'Delete', 'aria-label': 'Delete message ' + x.id,
          onclick: () => openDialog('Delete message ' + x.id + '?', [h('p', { text: 'It will not be delivered, and its sender is not told.' })], 'Delete', async () => { await act(x, 'delete'); return true; }, true) })) },
    ], r.data.items), pager(queueView, r.data.total, showQueue)));
}

// ---- LDAP directory ----

// The settings in groups, with the words shown beside each control; the
// API's own one-line help becomes the hint.
const ldapGroups = [
  ['Connection', [['urls', 'Server URLs'], ['starttls', 'StartTLS on ldap:// URLs'],
    ['tls_verify', 'Verify the server certificate'], ['ca_file', 'CA certificate file'],
    ['bind_dn', 'Service account DN'], ['bind_password', 'Service account password'],
    ['base_dn', 'Base DN of users'], ['timeout', 'Timeout (seconds)'], ['pool_size', 'Pooled connections']]],
  ['Users', [['user_filter', 'User filter'], ['login_attrs', 'Login attributes'],
    ['mail_attr', 'Address attribute'], ['alt_attrs', 'Alternate address attributes'],
    ['alt_prefix', 'Address prefix'], ['name_attr', 'Display name attribute'],
    ['quota_attr', 'Quota attribute'], ['disabled_attr', 'Disabled attribute'],
    ['disabled_mask', 'Disabled bits'], ['domains', 'Domains served from LDAP']]],
  ['Groups', [['group_base', 'Base DN of groups'], ['group_filter', 'Group filter'],
    ['member_attr', 'Member attribute'], ['group_mail_attr', 'Group address attribute'],
    ['member_of_attr', 'Member-of attribute'], ['admin_group', 'Administrators group DN']]],
  ['Sync', [['sync_interval', 'Sync interval (seconds)'], ['cache_ttl', 'Address cache (seconds)']]],
];
const ldapBools = new Set(['starttls', 'tls_verify']);

function ldapPasswordHint(x) {
  return 'Stored: ' + x.value + '. Leave empty to keep it; it is never shown.';
}

function ldapField(key, label, x) {
  if (x.secret) {
    return field(label, key, { type: 'password', autocomplete: 'new-password', hint: ldapPasswordHint(x) });
  }
  if (ldapBools.has(key)) {
    return field(label, key, { type: 'select', value: x.value, options: [['yes', 'yes'], ['no', 'no']], hint: x.help });
  }
  return field(label, key, { value: x.value, hint: x.help, inputmode: /^(timeout|pool_size|disabled_mask|sync_interval|cache_ttl)$/.test(key) ? 'numeric' : undefined });
}

// What the form holds that differs from what was loaded (the preset and a
// typed password always count).
function ldapChanges(v, loaded) {
  const out = {};
  if (v.preset) out.preset = v.preset;
  for (const [k, val] of Object.entries(v)) {
    if (k === 'preset' || !(k in loaded)) continue;
    if (k === 'bind_password' ? val !== '' : val !== loaded[k].value) out[k] = val;
  }
  return out;
}

async function ldapSave(form, loaded) {
  const changes = ldapChanges(formValues(form), loaded);
  if (!Object.keys(changes).length) return 'unchanged';
  const r = await api('PUT', '/api/v1/ldap', changes);
  if (r.status !== 200) { showError(form, r.data); return 'error'; }
  for (const x of r.data.settings) loaded[x.key] = x;
  const pw = form.querySelector('[name="bind_password"]');
  pw.value = '';
  pw.parentElement.querySelector('.hint').textContent = ldapPasswordHint(loaded.bind_password);
  form.querySelector('[name="preset"]').value = '';
  for (const [k, x] of Object.entries(loaded)) {
    const el = form.querySelector('[name="' + k + '"]');
    if (el && !x.secret) el.value = x.value;
  }
  document.getElementById('ldap-state').textContent = ldapStateText(r.data);
  return 'saved';
}

function ldapStateText(d) {
  return d.enabled ? 'LDAP is on: logins and addresses are also looked up in the directory.'
    : 'LDAP is off (no server URL). Only local accounts can sign in.';
}

function ldapSettingsForm(d, loaded) {
  const groups = ldapGroups.map(([title, keys]) => h('fieldset', { class: 'group' }, h('legend', { text: title }),
    h('div', { class: 'fields' }, keys.filter(([k]) => loaded[k]).map(([k, label]) => ldapField(k, label, loaded[k])))));
  const preset = field('Apply a preset', 'preset', { type: 'select', value: '',
    options: [['', 'none (keep the attribute settings)'], ['openldap', 'OpenLDAP (inetOrgPerson, groupOfNames)'],
      ['ad', 'Active Directory (userPrincipalName, proxyAddresses, memberOf)']],
    hint: 'Sets the user and group attributes for that kind of server; fields you changed here still win.' });
  return makeForm('Settings', [preset, ...groups], 'Save settings', async (v, f) => {
    const r = await ldapSave(f, loaded);
    if (r === 'saved') toast('LDAP settings saved');
    else if (r === 'unchanged') toast('Nothing changed');
  });
}

function ldapTestCard(settingsForm, loaded) {
  const out = h('pre', { class: 'report', id: 'ldap-report', role: 'status', 'aria-live': 'polite', hidden: true });
  const form = makeForm('Test connection', [
    field('Login to look up (optional)', 'login', { placeholder: 'alice or alice@example.com',
      hint: 'Connects and binds with the settings above; with a login, also shows what Roost would see for that user. Unsaved changes are saved first.' }),
  ], 'Test connection', async (v, f) => {
    out.hidden = false;
    out.textContent = 'Testing…';
    const saved = await ldapSave(settingsForm, loaded);
    if (saved === 'error') { out.textContent = 'The settings were not saved: see the errors above.'; return; }
    const r = await api('POST', '/api/v1/ldap/test', v.login ? { login: v.login } : {});
    if (r.status !== 200) { out.textContent = ''; out.hidden = true; return showError(r.data.field === 'urls' ? settingsForm : f, r.data); }
    out.textContent = (r.data.ok ? 'Connection OK\n' : 'Test failed: ' + r.data.error + '\n') + r.data.report;
    out.classList.toggle('bad', !r.data.ok);
  });
  form.append(out);
  return form;
}

function ldapSyncCard(settingsForm) {
  const out = h('p', { class: 'result', id: 'ldap-sync-result', role: 'status', 'aria-live': 'polite' });
  const btn = h('button', { type: 'button', text: 'Sync now' });
  btn.addEventListener('click', async () => {
    btn.disabled = true;
    out.textContent = 'Syncing…';
    try {
      const r = await api('POST', '/api/v1/ldap/sync', {});
      if (r.status === 200) {
        const d = r.data;
        out.textContent = `Checked ${d.checked} accounts: ${d.updated} updated, ${d.disabled} disabled, ${d.enabled} enabled again.`;
      } else {
        out.textContent = 'Sync failed: ' + (r.data.error || 'status ' + r.status);
      }
    } finally { btn.disabled = false; }
  });
  return h('section', { class: 'card' }, h('h2', { text: 'Sync' }),
    h('p', { class: 'sub', text: 'Compares every LDAP account with its entry now: accounts whose entry is gone or disabled are disabled (their mail is kept); names and quotas are copied. Runs on its own every sync interval.' }),
    h('div', { class: 'actions start' }, btn), out);
}

async function showLdap() {
  const r = await api('GET', '/api/v1/ldap');
  if (r.status !== 200) return page('LDAP directory', h('p', { class: 'error', text: r.data.error }));
  const loaded = {};
  for (const x of r.data.settings) loaded[x.key] = x;
  const settings = ldapSettingsForm(r.data, loaded);
  page('LDAP directory', h('p', { class: 'sub', id: 'ldap-state', text: ldapStateText(r.data) }),
    settings, ldapTestCard(settings, loaded), ldapSyncCard(settings));
}

// ---- my account ----

async function showMe() {
  const r = await api('GET', '/api/v1/me');
  if (r.status !== 200) return page('My account', h('p', { class: 'error', text: r.data.error }));
  const me = r.data;
  const pw = makeForm('Change password', [
    field('Current password', 'current_password', { type: 'password', autocomplete: 'current-password', required: true }),
    field('New password', 'new_password', { type: 'password', autocomplete: 'new-password', required: true }),
    field('New password again', 'repeat', { type: 'password', autocomplete: 'new-password', required: true }),
  ], 'Change password', async (v, f) => {
    if (v.new_password !== v.repeat) return showError(f, { field: 'repeat', error: 'the two new passwords differ' });
    const c = await api('POST', '/api/v1/me/password', { current_password: v.current_password, new_password: v.new_password });
    if (c.status !== 200) return showError(f, c.data);
    f.reset();
    toast('Password changed; other sessions were signed out');
  });
  page('My account', h('div', { class: 'card' }, h('h2', { text: me.display_name || me.address }),
    h('dl', {}, h('dt', { text: 'Address' }), h('dd', { text: me.address }),
      h('dt', { text: 'Role' }), h('dd', { text: me.admin ? 'administrator' : 'user' }),
      h('dt', { text: 'Storage' }), h('dd', { class: 'quota' }, bar(me.used_bytes, me.quota_bytes), ' ', quotaText(me)))), pw);
}

// ---- routing ----

const screens = { '#/dashboard': showDashboard, '#/domains': showDomains, '#/accounts': showAccounts,
  '#/aliases': showAliases, '#/queue': showQueue, '#/ldap': showLdap, '#/me': showMe };

function route() {
  const hash = location.hash;
  if (hash.startsWith('#setup=')) return showSetup(hash.slice(7));
  if (!state.me) return;
  let fn = screens[hash];
  if (!fn || (!state.me.admin && hash !== '#/me')) fn = state.me.admin ? showDashboard : showMe;
  document.querySelectorAll('#nav a').forEach((a) => {
    if (a.getAttribute('href') === hash) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  fn().then(() => main.focus({ preventScroll: true }));
}

async function start() {
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', route);
  if (location.hash.startsWith('#setup=')) return route();
  const r = await api('GET', '/api/v1/session');
  if (r.status === 200) signedIn(r.data); else showSignIn();
}

start();
