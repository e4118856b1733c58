// docs.js — renders this server's OpenAPI document (/openapi.json) as the
// API reference (docs.html): per operation its parameters, request body,
// a curl example, an example answer per status generated from the schemas,
// and a "try it" form (a file input for image uploads; inputs for path and
// query parameters) that calls the operation from the page.
'use strict';
const $ = (id) => document.getElementById(id);
let DOC = null;

function h(tag, attrs, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === 'class') e.className = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k !== null && k !== undefined) e.append(k);
  return e;
}

function deref(s) {
  while (s && s.$ref) s = s.$ref.split('/').slice(1).reduce((o, k) => o[k], DOC);
  return s || {};
}

// An example value for a schema: its own example, else one made from it.
function example(s, depth) {
  s = deref(s);
  if (s.example !== undefined) return s.example;
  if ((depth || 0) > 6) return null;
  if (s.oneOf) return example(s.oneOf[0], depth + 1);
  if (s.enum) return s.enum[0];
  switch (s.type) {
    case 'object': {
      const o = {};
      for (const [k, v] of Object.entries(s.properties || {})) o[k] = example(v, (depth || 0) + 1);
      return o;
    }
    case 'array': return [example(s.items || {}, (depth || 0) + 1)];
    case 'integer': return s.default !== undefined ? s.default : (s.minimum || 0);
    case 'number': return s.maximum === 1 ? 0.87 : 1.5;
    case 'boolean': return true;
    case 'string': return s.format === 'binary' ? '<binary>' : 'string';
    default: return null;
  }
}

function curlFor(method, path, op) {
  const u = location.origin + path.replace(/\{(\w+)\}/g, (m, n) => n === 'model' ? 'MODEL' : n.toUpperCase());
  const rb = op.requestBody && op.requestBody.content;
  if (rb && rb['multipart/form-data']) return 'curl -F file=@cat.jpg ' + u;
  if (rb && rb['application/json']) return "curl -H 'Content-Type: application/json' -d @request.json " + u;
  return 'curl ' + (method !== 'get' ? '-X ' + method.toUpperCase() + ' ' : '') + u;
}

function paramsTable(params) {
  if (!params.length) return h('p', { class: 'muted' }, 'No parameters.');
  const t = h('table', {}, h('tr', {}, h('th', {}, 'name'), h('th', {}, 'in'), h('th', {}, 'type'), h('th', {}, 'description')));
  for (const p of params) {
    const s = deref(p.schema);
    let type = s.type || '';
    if (s.minimum !== undefined || s.maximum !== undefined) type += ' [' + (s.minimum ?? '') + '..' + (s.maximum ?? '') + ']';
    if (s.default !== undefined) type += ', default ' + s.default;
    t.append(h('tr', {}, h('td', {}, h('code', {}, p.name), p.required ? ' *' : ''), h('td', {}, p.in), h('td', {}, type), h('td', {}, p.description || '')));
  }
  return t;
}

function tryForm(method, path, op) {
  const params = (op.parameters || []).filter((p) => p.in === 'path' || p.in === 'query');
  const rb = op.requestBody && op.requestBody.content;
  const upload = rb && rb['multipart/form-data'];
  if (method !== 'get' && !upload) return null; // JSON bodies: see the curl example
  const form = h('form', { class: 'tryit' }, h('b', {}, 'Try it '));
  const inputs = {};
  for (const p of params) {
    const s = deref(p.schema);
    const i = h('input', { type: s.type === 'integer' ? 'number' : 'text', name: p.name, placeholder: p.name });
    if (s.default !== undefined) i.value = s.default;
    inputs[p.name] = i;
    form.append(h('label', {}, p.name + ' ', i));
  }
  let file = null;
  if (upload) {
    file = h('input', { type: 'file', name: 'file', accept: 'image/*' });
    form.append(h('label', {}, 'image ', file));
  }
  const out = h('pre', { class: 'tryout', hidden: '' });
  form.append(h('button', { type: 'submit' }, 'Send'), out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    let url = path.replace(/\{(\w+)\}/g, (m, n) => encodeURIComponent(inputs[n].value));
    const q = params.filter((p) => p.in === 'query' && inputs[p.name].value !== '')
      .map((p) => encodeURIComponent(p.name) + '=' + encodeURIComponent(inputs[p.name].value));
    if (q.length) url += '?' + q.join('&');
    const init = { method: method.toUpperCase() };
    if (upload) {
      if (!file.files.length) { out.hidden = false; out.textContent = 'Choose an image first.'; return; }
      const fd = new FormData();
      fd.append('file', file.files[0], file.files[0].name);
      init.body = fd;
    }
    out.hidden = false;
    out.textContent = init.method + ' ' + url + ' …';
    const t0 = performance.now();
    try {
      const r = await fetch(url, init);
      const ms = (performance.now() - t0).toFixed(1);
      let text = await r.text();
      try { text = JSON.stringify(JSON.parse(text), null, 2); } catch (e) { /* not JSON */ }
      if (text.length > 4000) text = text.slice(0, 4000) + '\n…';
      const be = r.headers.get('X-Osprey-Backend');
      out.textContent = 'HTTP ' + r.status + ' in ' + ms + ' ms' + (be ? ' from ' + be : '') + '\n' + text;
      out.dataset.status = r.status;
    } catch (e) {
      out.textContent = String(e);
    }
  });
  return form;
}

function operation(method, path, op) {
  const body = h('div', { class: 'body' });
  if (op.description) body.append(h('p', {}, op.description));
  body.append(h('h3', {}, 'Parameters'), paramsTable(op.parameters || []));
  const rb = op.requestBody && op.requestBody.content;
  if (rb) {
    body.append(h('h3', {}, 'Request body'), h('p', {}, 'Content types: ', ...Object.keys(rb).flatMap((c, i) => [i ? ', ' : '', h('code', {}, c)])));
    if (rb['application/json']) body.append(h('pre', {}, JSON.stringify(example(rb['application/json'].schema), null, 2)));
  }
  body.append(h('h3', {}, 'Example request'), h('pre', {}, curlFor(method, path, op)));
  const f = tryForm(method, path, op);
  if (f) body.append(f);
  body.append(h('h3', {}, 'Responses'));
  for (const [code, r] of Object.entries(op.responses || {})) {
    const c = r.content || {};
    const ct = Object.keys(c)[0];
    const hdrs = Object.keys(r.headers || {});
    const ex = ct === 'application/json' ? JSON.stringify(example(c[ct].schema), null, 2) : null;
    // Short examples (the {"error": ...} answers) stay on the line.
    const inline = ex && ex.length < 40 && code !== '200';
    body.append(h('p', {}, h('b', {}, code), ' ' + (r.description || ''), ct ? ' — ' : '', ct ? h('code', {}, ct) : null,
      hdrs.length ? ' (headers: ' + hdrs.join(', ') + ')' : '', inline ? ': ' : '', inline ? h('code', {}, JSON.stringify(JSON.parse(ex))) : null));
    if (ex && !inline) body.append(h('pre', {}, ex));
  }
  const d = h('details', { class: 'op', 'data-path': path, 'data-method': method },
    h('summary', {}, h('span', { class: 'm ' + method }, method.toUpperCase()), h('span', { class: 'path' }, path), h('span', { class: 'muted' }, op.summary || '')),
    body);
  return d;
}

async function main() {
  try {
    DOC = await (await fetch('/openapi.json')).json();
  } catch (e) {
    $('desc').className = 'err';
    $('desc').textContent = 'Cannot load /openapi.json: ' + e;
    return;
  }
  document.title = DOC.info.title + ' — API reference';
  $('title').textContent = DOC.info.title + ' API ' + DOC.info.version;
  $('desc').textContent = DOC.info.description + ' ';
  $('desc').append(h('a', { href: '/openapi.json' }, 'OpenAPI document'));
  // The dispatcher also has the try-it and status pages.
  if (DOC.paths['/ui/status']) {
    const nav = $('nav');
    nav.insertBefore(h('a', { href: '/ui/status' }, 'Status'), nav.children[1]);
    nav.insertBefore(h('a', { href: '/' }, 'Try it'), nav.children[1]);
  }
  const ops = $('ops');
  for (const [path, item] of Object.entries(DOC.paths))
    for (const [method, op] of Object.entries(item)) {
      const d = operation(method, path, op);
      if (path === '/classify') d.open = true;
      ops.append(d);
    }
  ops.dataset.count = ops.children.length;
}
main();
