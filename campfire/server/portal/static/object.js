// The object page: draws the spectra, χ²(z) and cutout, keeps the lines at the redshift being
// considered, and wires the inspection form, tags and keyboard shortcuts.
/* global Plotly */
import {api, el, onKeys, pageData, toast} from './portal.js';
import {PLOT_CONFIG, assignStyles, chi2Figure, colorOf, cutoutFigure, lineDecorations, spectrumFigure, zMarker} from './spectrum-plots.js';
import {Inspector, step} from './inspect.js';

const data = pageData();
const specDiv = document.getElementById('spectrum-plot');
const chi2Div = document.getElementById('chi2-plot');
const cutoutDiv = document.getElementById('cutout-plot');
const menu = document.getElementById('line-menu');
const state = {
  unit: 'fnu', showLines: true, showModel: false, view: null, fig: null,
  z: data.redshift ?? data.redshift_auto ?? null,
};
const inspector = new Inspector(data, (z) => { state.z = z; redrawLines(); });

function redrawLines() {
  document.getElementById('z-lines').textContent = state.z === null ? '—' : state.z.toFixed(4);
  if (!state.fig) return;
  const lines = lineDecorations(data.lines, state.z, specDiv.layout.xaxis.range, state.showLines);
  const panels = state.fig.layout.annotations.filter((a) => a.meta === 'panel');
  Plotly.relayout(specDiv, {shapes: [...state.fig.masked, ...lines.shapes], annotations: [...panels, ...lines.annotations]});
  if (chi2Div.data) Plotly.relayout(chi2Div, {shapes: zMarker(state.z)});
}

function drawSpectrum() {
  const fig = spectrumFigure(state.view, state);
  state.fig = fig;
  if (!fig.spectra.length) {
    specDiv.replaceChildren(el('p', {class: 'muted'}, 'No readable spectrum of this object.'));
    return Promise.resolve();
  }
  const layout = {...fig.layout, shapes: fig.masked};
  specDiv.style.height = `${layout.height}px`;  // responsive plots fill their box: give it the figure's height
  return Plotly.react(specDiv, fig.traces, layout, PLOT_CONFIG).then(() => {
    specDiv.dataset.unit = state.unit;
    redrawLines();
  });
}

function drawChi2() {
  const fits = state.view.spectra.filter((s) => s.fit);
  if (!fits.length) {
    chi2Div.replaceChildren(el('p', {class: 'muted'}, 'No automatic fit stored with these spectra.'));
    return Promise.resolve();
  }
  const fig = chi2Figure(state.view, state.z);
  chi2Div.style.height = `${fig.layout.height}px`;
  return Plotly.react(chi2Div, fig.traces, fig.layout, PLOT_CONFIG);
}

// the automatic fit's distinct solutions: the solutions of the spectrum that gave the object's
// automatic redshift first, then other spectra's best redshifts where they differ
function candidates(view) {
  const fits = view.spectra.filter((s) => s.fit);
  if (!fits.length) return [];
  const auto = data.redshift_auto;
  fits.sort((a, b) => (auto === null ? 0 : Math.abs(a.fit.redshift - auto) - Math.abs(b.fit.redshift - auto))
    || (b.signal_to_noise || 0) - (a.signal_to_noise || 0));
  const source = (s) => s.style.label;
  const out = fits[0].fit.alternatives.map((a) => ({z: a.z, dchi2: a.dchi2, source: source(fits[0])}));
  for (const s of fits.slice(1)) {
    const z = s.fit.redshift;
    if (out.every((c) => Math.abs(c.z - z) / (1 + z) > 0.005)) out.push({z, dchi2: 0, source: source(s), other: true});
  }
  return out;
}

// -- identify a clicked feature -----------------------------------------------------------------
let menuItems = [];
let menuIndex = 0;

function openLineMenu(wave, clientX, clientY) {
  menuItems = data.lines
    .map((line) => ({line, z: wave / line.rest_um - 1}))
    .filter((item) => item.z >= 0 && item.z <= 20);
  if (!menuItems.length || !inspector.form) return;
  menuIndex = 0;
  if (state.z !== null) {
    let best = Infinity;
    menuItems.forEach((item, i) => {
      const d = Math.abs(item.z - state.z);
      if (d < best) { best = d; menuIndex = i; }
    });
  }
  menu.replaceChildren(
    el('div', {class: 'menu-title'}, `feature at ${wave.toFixed(4)} μm is…`),
    ...menuItems.map((item, i) => el('button', {type: 'button', role: 'menuitem', 'data-index': i,
      class: item.line.kind, onclick: () => chooseLine(i)},
      el('span', {class: 'name'}, item.line.name), el('span', {class: 'rest'}, `${(item.line.rest_um * 1e4).toFixed(1)} Å`),
      el('span', {class: 'z'}, `z = ${item.z.toFixed(4)}`))),
  );
  const box = specDiv.getBoundingClientRect();
  menu.style.left = `${Math.min(clientX - box.left + 12, box.width - 260)}px`;
  menu.style.top = `${Math.max(clientY - box.top - 40, 0)}px`;
  menu.dataset.wave = String(wave);
  menu.hidden = false;
  highlight();
}

function highlight() {
  menu.querySelectorAll('button').forEach((b, i) => b.classList.toggle('active', i === menuIndex));
  menu.querySelector('button.active')?.scrollIntoView({block: 'nearest'});
}

function chooseLine(i) {
  const item = menuItems[i];
  menu.hidden = true;
  if (item) inspector.setRedshift(item.z, `${item.line.name} at ${(item.line.rest_um * (1 + item.z)).toFixed(4)} μm`);
}

document.addEventListener('keydown', (event) => {
  if (menu.hidden) return;
  const keys = {ArrowDown: 1, '.': 1, ArrowUp: -1, ',': -1};
  if (event.key in keys) {
    menuIndex = (menuIndex + keys[event.key] + menuItems.length) % menuItems.length;
    highlight();
  } else if (event.key === 'Enter') {
    chooseLine(menuIndex);
  } else if (event.key === 'Escape') {
    menu.hidden = true;
  } else {
    return;
  }
  event.preventDefault();
  event.stopImmediatePropagation();
}, true);
document.addEventListener('click', (event) => {
  if (!menu.hidden && !menu.contains(event.target) && !specDiv.contains(event.target)) menu.hidden = true;
});

// -- tags ---------------------------------------------------------------------------------------
async function tagObject(slug, add) {
  try {
    await api(add ? 'POST' : 'DELETE', `/api/v1/tags/${encodeURIComponent(slug)}/objects`, {object_ids: [data.object_id]});
  } catch (err) {
    toast(`tagging failed: ${err.message}`, 'error');
    return;
  }
  const list = document.getElementById('object-tags');
  const existing = list.querySelector(`li[data-owner="${CSS.escape(data.user)}"][data-slug="${CSS.escape(slug)}"]`);
  if (add && !existing) {
    list.querySelector('.empty-tags')?.remove();
    list.append(el('li', {class: 'tag private', 'data-owner': data.user, 'data-slug': slug}, `${data.user}/${slug}`,
      el('button', {type: 'button', class: 'chip-remove', 'data-untag': slug, 'aria-label': `remove from ${data.user}/${slug}`}, '×')));
  } else if (!add && existing) {
    existing.remove();
  }
  toast(`${add ? 'added to' : 'removed from'} ${data.user}/${slug}`);
}

document.getElementById('object-tags')?.addEventListener('click', (event) => {
  const slug = event.target.dataset?.untag;
  if (slug) tagObject(slug, false);
});
const tagButton = document.getElementById('object-tag-add');
tagButton?.addEventListener('click', () => {
  const slug = document.getElementById('object-tag-target').value;
  if (slug) tagObject(slug, true);
});

// -- view toggles ---------------------------------------------------------------------------------
function setUnit(unit) {
  state.unit = unit;
  for (const b of document.querySelectorAll('[data-unit]')) b.setAttribute('aria-pressed', String(b.dataset.unit === unit));
  if (state.view) drawSpectrum();
}
for (const b of document.querySelectorAll('[data-unit]')) b.addEventListener('click', () => setUnit(b.dataset.unit));
const linesBox = document.getElementById('show-lines');
linesBox.addEventListener('change', () => { state.showLines = linesBox.checked; redrawLines(); });
const modelBox = document.getElementById('show-model');
modelBox.addEventListener('change', () => {
  state.showModel = modelBox.checked;
  if (!specDiv.data) return;
  const models = specDiv.data.map((t, i) => (t.meta && t.meta.role === 'model' ? i : -1)).filter((i) => i >= 0);
  if (models.length) Plotly.restyle(specDiv, {visible: state.showModel ? true : 'legendonly'}, models);
});
for (const button of document.querySelectorAll('[data-action="next"], [data-action="prev"]')) {
  button.addEventListener('click', () => step(data, button.dataset.action === 'next' ? 1 : -1));
}
document.addEventListener('campfire:refit', (event) => {
  const fit = event.detail;
  if (!chi2Div.data || !fit.z_grid) return;
  // on the plot's 1 + Δχ² scale, relative to the refit's own minimum
  const best = Math.min(...fit.chi2_grid.filter((c) => c !== null));
  Plotly.addTraces(chi2Div, {x: fit.z_grid, y: fit.chi2_grid.map((c) => (c === null ? null : 1 + c - best)),
    type: 'scatter', mode: 'lines', name: `refit near ${fit.z_range[0].toFixed(2)}–${fit.z_range[1].toFixed(2)}`,
    line: {color: '#e4572e', width: 2}, meta: {role: 'refit'}}).then(() => {
    chi2Div.dataset.refits = String((Number(chi2Div.dataset.refits) || 0) + 1);
  });
});

onKeys({
  a: () => inspector.acceptAuto(),
  o: () => inspector.cycleCandidates(),
  z: () => { if (inspector.zInput) { inspector.zInput.focus(); inspector.zInput.select(); } },
  r: () => inspector.refit(),
  0: () => inspector.setQuality(0), 1: () => inspector.setQuality(1), 2: () => inspector.setQuality(2),
  3: () => inspector.setQuality(3), 4: () => inspector.setQuality(4),
  b: () => inspector.toggleIssue('BAD_SPECTRUM'),
  e: () => inspector.toggleIssue('WRONG_EXTRACTION'),
  x: () => inspector.toggleIssue('CONTAMINATED'),
  c: () => document.getElementById('comment')?.focus(),
  Enter: () => inspector.save(),
  n: () => step(data, 1),
  p: () => step(data, -1),
  f: () => setUnit(state.unit === 'fnu' ? 'flam' : 'fnu'),
  l: () => { linesBox.checked = !linesBox.checked; linesBox.dispatchEvent(new Event('change')); },
  m: () => { modelBox.checked = !modelBox.checked; modelBox.dispatchEvent(new Event('change')); },
  t: () => tagButton?.click(),
});

async function drawCutout() {
  let image = null;
  let shutters = null;
  try {
    const response = await fetch(data.cutout_url, {credentials: 'same-origin'});
    if (response.ok) image = URL.createObjectURL(await response.blob());
  } catch (err) { image = null; }
  try { shutters = await api('GET', data.shutters_url); } catch (err) { shutters = null; }
  const fig = cutoutFigure(image, shutters, 4);
  cutoutDiv.style.height = `${fig.layout.height}px`;
  await Plotly.react(cutoutDiv, fig.traces, fig.layout, PLOT_CONFIG);
  cutoutDiv.dataset.image = image ? 'yes' : 'no';
}

async function main() {
  if (inspector.zInput && state.z !== null) inspector.zInput.value = state.z.toFixed(5);
  const cutout = drawCutout().catch((err) => toast(`cutout: ${err.message}`, 'error'));
  const history = inspector.loadHistory();
  try {
    state.view = await api('GET', data.view_url);
  } catch (err) {
    specDiv.replaceChildren(el('p', {class: 'error'}, `Could not load the spectra: ${err.message}`));
    return;
  }
  assignStyles(state.view.spectra);
  // the spectra table's swatches follow the plot's colours
  for (const s of state.view.spectra) {
    document.querySelector(`#spectra-table tr[data-spectrum-id="${CSS.escape(s.spectrum_id)}"]`)?.style.setProperty('--swatch', colorOf(s));
  }
  for (const s of state.view.spectra.filter((sp) => sp.error)) {
    toast(`${s.spectrum_id}: ${s.error}`, 'error');
  }
  inspector.setCandidates(candidates(state.view));
  await drawSpectrum();
  await drawChi2();
  specDiv.on?.('plotly_click', (event) => {
    const point = event.points && event.points[0];
    if (point && Number.isFinite(point.x)) openLineMenu(point.x, event.event.clientX, event.event.clientY);
  });
  chi2Div.on?.('plotly_click', (event) => {
    const point = event.points && event.points[0];
    if (point && Number.isFinite(point.x)) inspector.setRedshift(point.x, 'χ² curve');
  });
  await Promise.all([cutout, history]);
  document.body.dataset.plotsReady = '1';
}

main();
