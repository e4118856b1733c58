// status.js — the live status page (status.html): polls /ui/status.json
// every second and redraws the tiles, the backend table, the autoscaler's
// last decision and an SVG chart of requests/s and p99 over the minute.
'use strict';
const $ = (id) => document.getElementById(id);
const SVG = 'http://www.w3.org/2000/svg';
const fmtMs = (v) => v >= 100 ? v.toFixed(0) + ' ms' : v.toFixed(v >= 10 ? 1 : 2) + ' ms';

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  return e;
}

// An axis maximum of 4 "nice" steps (1, 2, 2.5, 5 × 10^n each) at or
// above v, so that every tick label is a round number.
function niceMax(v) {
  if (!(v > 0)) return 4;
  const s = v / 4, p = Math.pow(10, Math.floor(Math.log10(s)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= s) return 4 * m * p;
  return 40 * p;
}

function chart(series) {
  const svg = $('chart');
  const W = 800, H = 240, L = 48, R = 48, T = 26, B = 26;
  const w = W - L - R, h = H - T - B;
  svg.replaceChildren();
  const rps = series.map((s) => s.requests);
  const p99 = series.map((s) => s.p99_ms);
  const yMax = niceMax(Math.max(...rps)), zMax = niceMax(Math.max(...p99));
  const x = (i) => L + (w * i) / (series.length - 1);
  for (let k = 0; k <= 4; k++) {
    const y = T + h - (h * k) / 4;
    svg.appendChild(el('line', { x1: L, x2: L + w, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(el('text', { x: L - 6, y: y + 4, 'text-anchor': 'end' }, +(yMax * k / 4).toPrecision(3)));
    svg.appendChild(el('text', { x: L + w + 6, y: y + 4 }, +(zMax * k / 4).toPrecision(3)));
  }
  for (let s = 0; s <= 60; s += 10) {
    const i = series.length - 1 - s;
    svg.appendChild(el('text', { x: x(i), y: H - 8, 'text-anchor': 'middle' }, s ? '−' + s + ' s' : 'now'));
  }
  svg.appendChild(el('text', { x: L - 6, y: 12, 'text-anchor': 'end' }, 'req/s'));
  svg.appendChild(el('text', { x: L + w + 6, y: 12 }, 'p99 ms'));
  const pt = (i, v, max) => x(i).toFixed(1) + ',' + (T + h - (h * v) / max).toFixed(1);
  svg.appendChild(el('polyline', { points: rps.map((v, i) => pt(i, v, yMax)).join(' '), class: 'rps' }));
  // p99 only where there were requests (a second without any has none):
  // a dot per second, joined where seconds follow each other.
  let d = '';
  p99.forEach((v, i) => {
    if (!rps[i]) return;
    d += (i && rps[i - 1] ? 'L' : 'M') + pt(i, v, zMax);
    const [cx, cy] = pt(i, v, zMax).split(',');
    svg.appendChild(el('circle', { cx, cy, r: 2.5, class: 'p99dot' }));
  });
  svg.appendChild(el('path', { d: d || 'M0,0', class: 'p99' }));
}

function cell(tr, text, cls) {
  const td = tr.insertCell();
  td.textContent = text;
  if (cls) td.className = cls;
  return td;
}

function backends(list) {
  const tb = $('backends').tBodies[0];
  tb.replaceChildren();
  for (const b of list) {
    const tr = tb.insertRow();
    cell(tr, b.address).className = 'path';
    const st = document.createElement('span');
    st.className = 'state ' + b.state;
    st.textContent = b.state.replace('_', ' ');
    tr.insertCell().appendChild(st);
    cell(tr, b.inflight, 'num');
    cell(tr, b.ewma_ms > 0 ? fmtMs(b.ewma_ms) : '–', 'num');
    cell(tr, b.rps.toFixed(1), 'num');
    cell(tr, b.sent, 'num');
    cell(tr, b.models.join(', '));
  }
  const ready = list.filter((b) => b.state === 'ready').length;
  $('nb').textContent = list.length + ' backend' + (list.length === 1 ? '' : 's') + ', ' + ready + ' ready';
  $('nb').dataset.count = list.length;
}

function autoscaler(a) {
  const box = $('autoscaler');
  if (!a) {
    box.textContent = 'No autoscaler configured (start the dispatcher with --autoscaler-url URL).';
    $('workers').textContent = '–';
    return;
  }
  const s = a.status;
  if (!s) {
    box.className = 'err';
    box.textContent = 'No answer from ' + a.url + ': ' + (a.error || 'not polled yet');
    return;
  }
  box.className = '';
  box.replaceChildren();
  $('workers').textContent = s.current + ' / ' + s.desired;
  const d = s.last_decision || {};
  const p = document.createElement('p');
  p.textContent = 'Workers: ' + s.current + ' current, ' + s.desired + ' desired (' + s.actuator + ')' +
    (s.panic ? ', panic mode' : '') + (d.held ? ', holding' : '') + '.';
  const why = document.createElement('p');
  why.textContent = 'Last decision: ' + (d.rule || d.reason || 'none yet');
  box.append(p, why);
  if (!a.ok) {
    const e = document.createElement('p');
    e.className = 'err';
    e.textContent = 'Last poll failed (' + a.error + '); showing the answer from ' + a.age_s.toFixed(0) + ' s ago.';
    box.appendChild(e);
  }
}

async function tick() {
  try {
    const r = await fetch('/ui/status.json', { cache: 'no-store' });
    const j = await r.json();
    const t = j.totals;
    $('rps').textContent = t.rps;
    $('rps1m').textContent = t.rps_1m.toFixed(1);
    $('p50').textContent = t.requests_1m ? fmtMs(t.p50_ms) : '–';
    $('p95').textContent = t.requests_1m ? fmtMs(t.p95_ms) : '–';
    $('p99').textContent = t.requests_1m ? fmtMs(t.p99_ms) : '–';
    $('errrate').textContent = (100 * t.error_rate).toFixed(2) + ' %';
    $('inflight').textContent = t.inflight + ' / ' + t.queued;
    chart(t.series);
    backends(j.backends);
    autoscaler(j.autoscaler);
    $('updated').textContent = 'updated ' + new Date(j.time * 1000).toLocaleTimeString();
    $('updated').className = 'muted';
  } catch (e) {
    $('updated').textContent = 'cannot reach the dispatcher';
    $('updated').className = 'err';
  }
}
tick();
setInterval(tick, 1000);
