// The brygga console: logs in with an admin API token and shows what the
// API lets that token see: tenants, their adapters (status, last error, an
// enable/disable toggle) and portals. Everything from the API is rendered as
// text (textContent / text nodes), never as HTML.
'use strict';

(() => {
  const TOKEN_KEY = 'brygga.console.token';
  const REFRESH_MS = 3000;
  const STATUS_LABELS = {
    connecting: 'connecting',
    connected: 'connected',
    transient_error: 'transient error',
    bad_credentials: 'bad credentials',
    stopped: 'stopped',
    disabled: 'disabled',
  };

  const $ = (id) => document.getElementById(id);
  const enc = encodeURIComponent;
  let generation = 0; // bumped on log in and out: a late answer of an older session draws nothing
  let timer = null;
  let chain = Promise.resolve(); // refreshes run one at a time
  let drawn = null; // what the page shows now, to redraw only on change
  let errorSource = null; // 'refresh' or 'action': a good refresh clears only its own errors
  const pending = new Set(); // "tenant/kind" toggles in flight

  class ApiError extends Error {
    constructor(status, errcode, message) {
      super(message);
      this.status = status;
      this.errcode = errcode;
    }
    toString() {
      return this.status ? `${this.status} ${this.errcode}: ${this.message}` : this.message;
    }
  }

  /** Calls the admin API with the token; answers the JSON body or throws an ApiError. */
  async function api(method, path) {
    let response;
    try {
      response = await fetch('/api/v1' + path, {
        method,
        headers: { Authorization: 'Bearer ' + sessionStorage.getItem(TOKEN_KEY), Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (err) {
      throw new ApiError(0, 'NETWORK', 'the bridge did not answer: ' + err.message);
    }
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch (_) {
      body = null;
    }
    if (!response.ok) {
      const errcode = body && typeof body.errcode === 'string' ? body.errcode : 'HTTP_' + response.status;
      const message = body && typeof body.error === 'string' ? body.error : text || response.statusText;
      throw new ApiError(response.status, errcode, message);
    }
    return body;
  }

  /** An element with attributes, listeners (`on...`) and children; strings become text nodes. */
  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name.startsWith('on')) node.addEventListener(name.slice(2), value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function showError(err, source) {
    const box = $('error');
    box.textContent = err ? String(err) : '';
    box.hidden = !err;
    errorSource = err ? source : null;
  }

  function when(ms) {
    if (typeof ms !== 'number') return '';
    const date = new Date(ms);
    return h('time', { datetime: date.toISOString() }, date.toLocaleString());
  }

  // --- loading ---------------------------------------------------------

  /** Everything the page shows, fetched fresh; a tenant's failures are kept as text. */
  async function fetchModel() {
    const who = await api('GET', '/whoami');
    const { tenants } = await api('GET', '/tenants');
    const loaded = await Promise.all(
      tenants.map(async (tenant) => {
        const base = '/tenants/' + enc(tenant.id);
        const [adapters, portals] = await Promise.allSettled([
          api('GET', base + '/adapters'),
          api('GET', base + '/portals'),
        ]);
        return {
          id: tenant.id,
          name: tenant.display_name,
          suspended: tenant.suspended,
          adapters: adapters.status === 'fulfilled' ? adapters.value.adapters : String(adapters.reason),
          portals: portals.status === 'fulfilled' ? portals.value.portals : String(portals.reason),
        };
      }),
    );
    return { who, tenants: loaded, pending: [...pending].sort() };
  }

  async function load(gen) {
    if (gen !== generation) return;
    let model;
    try {
      model = await fetchModel();
    } catch (err) {
      if (gen !== generation) return;
      if (err instanceof ApiError && err.status === 401) logout(err);
      else showError(err, 'refresh');
      return;
    }
    if (gen !== generation) return;
    if (errorSource === 'refresh') showError(null);
    const signature = JSON.stringify(model);
    if (signature !== drawn) {
      drawn = signature;
      draw(model);
    }
    $('refreshed').textContent = `Updated ${new Date().toLocaleTimeString()}; refreshes every ${REFRESH_MS / 1000} s.`;
  }

  function refresh() {
    const gen = generation;
    chain = chain.then(() => load(gen)).catch((err) => showError(err, 'refresh'));
    return chain;
  }

  async function tick(gen) {
    await refresh();
    if (gen === generation) timer = setTimeout(() => tick(gen), REFRESH_MS);
  }

  // --- drawing ---------------------------------------------------------

  function draw(model) {
    const who = model.who;
    $('whoami').textContent =
      who.role === 'operator' ? 'Signed in as the operator (all tenants)' : `Signed in as tenant admin of ${who.tenant}`;
    $('whoami').hidden = false;
    const sections = model.tenants.map(tenantSection);
    if (sections.length === 0) sections.push(h('p', { class: 'empty' }, 'No tenants.'));
    $('tenants').replaceChildren(...sections);
  }

  function tenantSection(tenant) {
    return h(
      'section',
      { class: 'tenant', 'data-tenant': tenant.id },
      h(
        'h2',
        null,
        tenant.name && tenant.name !== tenant.id ? [tenant.name, ' ', h('span', { class: 'tenant-id' }, tenant.id)] : tenant.id,
        tenant.suspended ? h('span', { class: 'badge suspended' }, 'suspended') : null,
      ),
      h('h3', null, 'Adapters'),
      typeof tenant.adapters === 'string' ? failure(tenant.adapters) : adapterTable(tenant.id, tenant.adapters),
      h('h3', null, 'Portals'),
      typeof tenant.portals === 'string' ? failure(tenant.portals) : portalTable(tenant.portals),
    );
  }

  function failure(text) {
    return h('p', { class: 'error', role: 'alert' }, text);
  }

  function table(headings, rows, emptyText) {
    if (rows.length === 0) return h('p', { class: 'empty' }, emptyText);
    return h('table', null, h('thead', null, h('tr', null, headings.map((t) => h('th', null, t)))), h('tbody', null, rows));
  }

  function adapterTable(tenant, adapters) {
    const rows = adapters.map((adapter) => {
      const action = adapter.enabled ? 'disable' : 'enable';
      const busy = pending.has(tenant + '/' + adapter.kind);
      return h(
        'tr',
        { class: 'adapter', 'data-kind': adapter.kind },
        h('td', null, adapter.kind),
        h(
          'td',
          null,
          h('span', { class: 'badge status status-' + adapter.status, 'data-status': adapter.status }, STATUS_LABELS[adapter.status] || adapter.status),
        ),
        h('td', { class: 'last-error' }, adapter.last_error || '—'),
        h('td', null, when(adapter.last_error_at)),
        h(
          'td',
          null,
          h(
            'button',
            { type: 'button', class: 'toggle', 'data-action': action, disabled: busy, onclick: (event) => toggle(tenant, adapter.kind, action, event.currentTarget) },
            busy ? 'Working…' : action === 'disable' ? 'Disable' : 'Enable',
          ),
        ),
      );
    });
    return table(['Kind', 'Status', 'Last error', 'When', ''], rows, 'No adapters configured.');
  }

  function portalTable(portals) {
    const rows = portals.map((portal) =>
      h(
        'tr',
        { class: 'portal' },
        h('td', null, portal.kind),
        h('td', null, portal.remote_room),
        h('td', null, portal.room_id || 'not created yet'),
        h('td', null, portal.name || ''),
      ),
    );
    return table(['Kind', 'Remote room', 'Matrix room', 'Name'], rows, 'No portals.');
  }

  // --- actions ---------------------------------------------------------

  async function toggle(tenant, kind, action, button) {
    const key = tenant + '/' + kind;
    if (pending.has(key)) return;
    pending.add(key);
    button.disabled = true;
    button.textContent = 'Working…';
    try {
      await api('POST', `/tenants/${enc(tenant)}/adapters/${enc(kind)}/${action}`);
      showError(null);
    } catch (err) {
      showError(new ApiError(err.status, err.errcode, `${action} ${kind} of ${tenant}: ${err.message}`), 'action');
    } finally {
      pending.delete(key);
    }
    await refresh();
  }

  function start() {
    generation += 1;
    drawn = null;
    clearTimeout(timer);
    $('login').hidden = true;
    $('logout').hidden = false;
    showError(null);
    tick(generation);
  }

  function logout(err) {
    generation += 1;
    clearTimeout(timer);
    sessionStorage.removeItem(TOKEN_KEY);
    drawn = null;
    $('tenants').replaceChildren();
    $('whoami').hidden = true;
    $('logout').hidden = true;
    $('refreshed').textContent = '';
    $('login').hidden = false;
    showError(err || null, 'refresh');
    $('token').focus();
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('login').addEventListener('submit', (event) => {
      event.preventDefault();
      const token = $('token').value.trim();
      $('token').value = '';
      if (!token) return;
      sessionStorage.setItem(TOKEN_KEY, token);
      start();
    });
    $('logout').addEventListener('click', () => logout(null));
    if (sessionStorage.getItem(TOKEN_KEY)) start();
    else logout(null);
  });
})();
