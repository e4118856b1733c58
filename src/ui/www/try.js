// try.js — the try-it page (index.html): picks or takes a dropped image,
// posts it to /classify (or /v1/models/{m}/classify when a model is chosen)
// and draws the top-5 predictions as bars, with the round-trip latency and
// the worker named by the dispatcher's X-Osprey-Backend header.
'use strict';
const $ = (id) => document.getElementById(id);
let chosen = null;

function setFile(f) {
  chosen = f;
  $('go').disabled = !f;
  if (!f) return;
  const img = $('preview');
  if (img.src) URL.revokeObjectURL(img.src);
  img.src = URL.createObjectURL(f);
  img.hidden = false;
  $('hint').textContent = f.name;
}

async function loadModels() {
  try {
    const r = await fetch('/v2/repository/index');
    const idx = await r.json();
    const sel = $('model');
    for (const m of idx) {
      const o = document.createElement('option');
      o.value = o.textContent = m.name;
      sel.appendChild(o);
    }
    // One model: it is the default; the chooser only matters with several.
    sel.parentElement.hidden = idx.length < 2;
  } catch (e) { /* the default model still works */ }
}

function bar(p) {
  const row = document.createElement('div');
  row.className = 'bar';
  const lbl = document.createElement('span');
  lbl.className = 'lbl';
  lbl.textContent = p.label;
  lbl.title = p.label + ' (class ' + p.index + ')';
  const track = document.createElement('span');
  track.className = 'track';
  const fill = document.createElement('span');
  fill.className = 'fill';
  fill.style.display = 'block';
  fill.style.width = (100 * p.score).toFixed(1) + '%';
  track.appendChild(fill);
  const pct = document.createElement('span');
  pct.className = 'num';
  pct.textContent = (100 * p.score).toFixed(1) + ' %';
  row.append(lbl, track, pct);
  return row;
}

async function classify(ev) {
  ev.preventDefault();
  if (!chosen) return;
  const model = $('model').value;
  const url = (model ? '/v1/models/' + encodeURIComponent(model) + '/classify' : '/classify') + '?top_k=5';
  const fd = new FormData();
  fd.append('file', chosen, chosen.name);
  $('go').disabled = true;
  const res = $('result');
  res.className = 'muted';
  res.textContent = 'Classifying…';
  const t0 = performance.now();
  try {
    const r = await fetch(url, { method: 'POST', body: fd });
    const ms = performance.now() - t0;
    const body = await r.json();
    if (!r.ok) throw new Error('HTTP ' + r.status + ': ' + (body.error || ''));
    res.textContent = '';
    res.className = '';
    res.id = 'result';
    for (const p of body.results[0].predictions) res.appendChild(bar(p));
    $('latency').textContent = ms.toFixed(1) + ' ms';
    const t = body.timings_ms || {};
    $('infer').textContent = t.infer !== undefined ? t.infer.toFixed(1) + ' ms' : '–';
    $('backend').textContent = r.headers.get('X-Osprey-Backend') || 'this server';
    $('usedmodel').textContent = body.model + (body.version ? ' v' + body.version : '');
    $('facts').hidden = false;
  } catch (e) {
    res.className = 'err';
    res.textContent = String(e.message || e);
  } finally {
    $('go').disabled = !chosen;
  }
}

$('file').addEventListener('change', () => setFile($('file').files[0] || null));
const drop = $('drop');
drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (e) => {
  e.preventDefault();
  drop.classList.remove('over');
  if (e.dataTransfer.files.length) setFile(e.dataTransfer.files[0]);
});
$('form').addEventListener('submit', classify);
loadModels();
