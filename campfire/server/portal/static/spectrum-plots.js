// The object page's figures (Plotly.js): spectra with their 2D S/N images on one wavelength
// axis, lines at a redshift, χ²(z) of the automatic fits, the cutout with MSA shutters.
/* global Plotly */

export const GRATING_COLORS = {
  PRISM: '#1f5fa8', G140M: '#2e8b57', G235M: '#d9731a', G395M: '#b8323a',
  G140H: '#5aa469', G235H: '#e39b4a', G395H: '#d1606a',
};
const FALLBACK_COLORS = ['#6a51a3', '#8c564b', '#17becf', '#7f7f7f'];
const LINE_COLORS = {emission: '#7b3294', absorption: '#1b7837'};
const FONT = {family: 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', size: 12, color: '#1d2733'};
export const PLOT_CONFIG = {responsive: true, displaylogo: false, scrollZoom: false,
  modeBarButtonsToRemove: ['lasso2d', 'select2d', 'autoScale2d'], toImageButtonOptions: {format: 'png', scale: 2}};

// each spectrum's colour (by grating; a second spectrum of one grating gets its own) and
// label (grating/filter, with the observation when two spectra would read the same)
export function assignStyles(spectra) {
  const used = new Set();
  const names = spectra.map((s) => (s.filter ? `${s.grating}/${s.filter}` : s.grating));
  let spare = 0;
  spectra.forEach((s, i) => {
    let color = GRATING_COLORS[s.grating];
    if (!color || used.has(color)) { color = FALLBACK_COLORS[spare % FALLBACK_COLORS.length]; spare += 1; }
    used.add(color);
    const twin = names.filter((n) => n === names[i]).length > 1;
    s.style = {color, label: twin ? `${names[i]} · ${s.observation}` : names[i]};
  });
  return spectra;
}

export function colorOf(spectrum) {
  return spectrum.style ? spectrum.style.color : (GRATING_COLORS[spectrum.grating] || FALLBACK_COLORS[0]);
}

function alpha(hex, a) {
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255},${(n >> 8) & 255},${n & 255},${a})`;
}

function labelOf(spectrum) {
  return spectrum.style ? spectrum.style.label : spectrum.grating;
}

// the running median of 7 pixels where it is a significant signal (over twice its noise, ≈ err/√7):
// the y range follows what the spectra show, not single noisy pixels or a noisy grating's edges
function significant(values, errors) {
  const out = [];
  for (let i = 0; i < values.length; i += 1) {
    const window = [];
    const noise = [];
    for (let k = Math.max(0, i - 3); k <= Math.min(values.length - 1, i + 3); k += 1) {
      if (values[k] !== null && Number.isFinite(values[k])) { window.push(values[k]); noise.push(errors[k]); }
    }
    if (window.length < 4) continue;
    window.sort((a, b) => a - b);
    noise.sort((a, b) => a - b);
    const median = window[window.length >> 1];
    if (Math.abs(median) > 2 * noise[noise.length >> 1] / Math.sqrt(window.length)) out.push(median);
  }
  return out;
}

function finite(values) {
  return values.filter((v) => v !== null && Number.isFinite(v));
}

function quantile(sorted, q) {
  if (!sorted.length) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

// a y range that shows the spectra's signal and the photometry, not their noisiest pixels
function robustRange(spectra, unit, photometry) {
  const values = [];
  for (const s of spectra) values.push(...significant(s[unit], s[`${unit}_err`]));
  if (photometry) values.push(...finite(photometry.bands.map((b) => b[unit])));
  values.sort((a, b) => a - b);
  if (!values.length) return undefined;
  const lo = quantile(values, 0.01);
  const hi = values[values.length - 1];  // emission lines (several pixels wide, kept by the median) stay in view
  const span = (hi - lo) || Math.abs(hi) || 1;
  return [Math.min(lo - 0.1 * span, -0.05 * span), hi + 0.12 * span];
}

export function waveRange(spectra) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const s of spectra) {
    const w = finite(s.wave);
    if (w.length) { lo = Math.min(lo, w[0]); hi = Math.max(hi, w[w.length - 1]); }
  }
  return Number.isFinite(lo) ? [lo, hi] : [0.6, 5.3];
}

// where each panel sits: the 1D panel on top, one strip per 2D S/N image below it
function panelLayout(n2d) {
  const strip = 62;
  const gap = 8;
  const top = 360;
  const height = top + n2d * (strip + gap) + 90;
  const plotHeight = height - 90;
  const domains = [];
  let y = 0;
  for (let i = n2d - 1; i >= 0; i -= 1) {
    domains[i] = [y / plotHeight, (y + strip) / plotHeight];
    y += strip + gap;
  }
  return {height, main: [y / plotHeight, 1], strips: domains};
}

export function spectrumFigure(view, state) {
  const spectra = view.spectra.filter((s) => !s.error && s.wave);
  const unit = state.unit;
  const err = `${unit}_err`;
  const units = view.units;
  const traces = [];
  const withImage = spectra.filter((s) => s.snr_2d && s.snr_2d.z && s.snr_2d.z.length);
  const panels = panelLayout(withImage.length);
  spectra.forEach((s, i) => {
    const color = colorOf(s);
    const group = s.spectrum_id;
    const lower = s[unit].map((v, k) => (v === null || s[err][k] === null ? null : v - s[err][k]));
    const upper = s[unit].map((v, k) => (v === null || s[err][k] === null ? null : v + s[err][k]));
    traces.push({x: s.wave, y: lower, type: 'scatter', mode: 'lines', line: {width: 0, shape: 'hvh'},
      hoverinfo: 'skip', showlegend: false, legendgroup: group, name: `${labelOf(s)} −1σ`, meta: {role: 'error'}});
    traces.push({x: s.wave, y: upper, type: 'scatter', mode: 'lines', line: {width: 0, shape: 'hvh'},
      fill: 'tonexty', fillcolor: alpha(color, 0.22), hoverinfo: 'skip', showlegend: false,
      legendgroup: group, name: `${labelOf(s)} +1σ`, meta: {role: 'error'}});
    traces.push({x: s.wave, y: s[unit], type: 'scatter', mode: 'lines', name: labelOf(s),
      line: {width: 1.3, shape: 'hvh', color}, legendgroup: group, meta: {role: 'flux', spectrum_id: s.spectrum_id},
      hovertemplate: `${labelOf(s)}<br>λ %{x:.4f} μm<br>%{y:.4g} ${units[unit]}<extra></extra>`});
    if (s.fit && s.fit.model_wave && s.fit.model_wave.length) {
      traces.push({x: s.fit.model_wave, y: s.fit[`model_${unit}`], type: 'scatter', mode: 'lines',
        name: `${labelOf(s)} model (z=${s.fit.redshift.toFixed(4)})`, legendgroup: group, showlegend: false,
        line: {width: 1, dash: 'dot', color: alpha(color, 0.9)}, visible: state.showModel ? true : 'legendonly',
        meta: {role: 'model'}, hoverinfo: 'skip'});
    }
    if (s.synthetic_photometry && s.synthetic_photometry.length) {
      const p = s.synthetic_photometry;
      traces.push({x: p.map((b) => b.wave), y: p.map((b) => b[unit]), type: 'scatter', mode: 'markers',
        name: `${labelOf(s)} synthetic photometry`, legendgroup: group, meta: {role: 'synphot'},
        marker: {symbol: 'circle-open', size: 10, line: {width: 2}, color},
        error_y: {type: 'data', array: p.map((b) => b[err]), visible: true, color, thickness: 1},
        text: p.map((b) => b.band), hovertemplate: `%{text} synthetic from ${labelOf(s)}<br>%{y:.4g} ${units[unit]}<extra></extra>`});
    }
  });
  if (view.photometry && view.photometry.bands.length) {
    const p = view.photometry.bands;
    traces.push({x: p.map((b) => b.wave), y: p.map((b) => b[unit]), type: 'scatter', mode: 'markers',
      name: `photometry (${view.photometry.catalog || 'catalog'})`, meta: {role: 'photometry'},
      marker: {symbol: 'square', size: 8, color: '#111'},
      error_y: {type: 'data', array: p.map((b) => b[err]), visible: true, color: '#111', thickness: 1.2},
      text: p.map((b) => b.band), hovertemplate: `%{text}<br>λ %{x:.3f} μm<br>%{y:.4g} ${units[unit]}<extra></extra>`});
  }
  const layout = {
    height: panels.height, margin: {l: 70, r: 20, t: 20, b: 60}, font: FONT, hovermode: 'closest',
    paper_bgcolor: '#fff', plot_bgcolor: '#fff', clickmode: 'event',
    legend: {orientation: 'h', x: 0, y: 1.0, yanchor: 'bottom', font: {size: 11}},
    xaxis: {title: {text: 'observed wavelength [μm]'}, range: waveRange(spectra), anchor: withImage.length ? `y${withImage.length + 1}` : 'y',
      showline: true, mirror: true, linecolor: '#8896a5', ticks: 'outside', zeroline: false, gridcolor: '#eef1f4'},
    yaxis: {title: {text: unit === 'fnu' ? `f<sub>ν</sub> [${units.fnu}]` : `f<sub>λ</sub> [${units.flam}]`},
      domain: panels.main, range: robustRange(spectra, unit, view.photometry), showline: true, mirror: true, linecolor: '#8896a5',
      ticks: 'outside', zeroline: true, zerolinecolor: '#c4ccd5', gridcolor: '#eef1f4'},
    shapes: [], annotations: [],
  };
  withImage.forEach((s, i) => {
    const axis = `y${i + 2}`;
    const image = s.snr_2d;
    const width = image.z[0].length;
    let x = s.wave;
    if (!image.aligned || width !== s.wave.length) {
      const [lo, hi] = waveRange([s]);
      x = Array.from({length: width}, (_, k) => lo + ((hi - lo) * k) / Math.max(width - 1, 1));
    }
    traces.push({type: 'heatmap', x, y: image.y, z: image.z, xaxis: 'x', yaxis: axis, zmin: -2, zmax: 8,
      colorscale: 'Greys', reversescale: true, showscale: i === 0, name: `${labelOf(s)} 2D S/N`, meta: {role: 'snr2d', spectrum_id: s.spectrum_id},
      colorbar: i === 0 ? {title: {text: 'S/N', side: 'right'}, thickness: 10, len: Math.max(0.12, panels.strips[0][1] - panels.strips[0][0]) * 1.2,
        y: (panels.strips[0][0] + panels.strips[0][1]) / 2, yanchor: 'middle', x: 1.005} : undefined,
      hovertemplate: `${labelOf(s)} 2D<br>λ %{x:.4f} μm, y %{y:.0f} px<br>S/N %{z:.1f}<extra></extra>`});
    layout[`yaxis${i + 2}`] = {domain: panels.strips[i], showticklabels: false, ticks: '', fixedrange: true,
      zeroline: false, showgrid: false, showline: true, mirror: true, linecolor: '#8896a5'};
    layout.annotations.push({text: `2D S/N · ${labelOf(s)}`, xref: 'paper', yref: `${axis} domain`, x: 0.005, y: 0.95,
      xanchor: 'left', yanchor: 'top', showarrow: false, font: {size: 10, color: colorOf(s)},
      bgcolor: 'rgba(255,255,255,0.8)', meta: 'panel'});
  });
  layout.meta = {strips: withImage.map((s, i) => ({spectrum_id: s.spectrum_id, axis: `y${i + 2}`}))};
  return {traces, layout, spectra, masked: maskedShapes(spectra, withImage)};
}

// DQ-masked (bad) pixels: shaded in the spectrum's colour on the 1D panel and grey on its 2D strip
function maskedShapes(spectra, withImage) {
  const shapes = [];
  spectra.forEach((s, i) => {
    const strip = withImage.indexOf(s);
    for (const [x0, x1] of s.masked || []) {
      shapes.push({type: 'rect', xref: 'x', yref: 'y domain', x0, x1, y0: 0, y1: 1, layer: 'below',
        fillcolor: alpha(colorOf(s), 0.12), line: {width: 0}, name: 'masked'});
      if (strip >= 0) {
        shapes.push({type: 'rect', xref: 'x', yref: `y${strip + 2} domain`, x0, x1, y0: 0, y1: 1, layer: 'above',
          fillcolor: 'rgba(255,170,0,0.25)', line: {width: 0}, name: 'masked'});
      }
    }
  });
  return shapes;
}

// lines at redshift z inside the plotted range; labels thinned where they would overlap
export function lineDecorations(lines, z, range, show) {
  const shapes = [];
  const annotations = [];
  if (!show || z === null || !Number.isFinite(z)) return {shapes, annotations};
  const minGap = (range[1] - range[0]) * 0.012;
  let lastLabel = -Infinity;
  for (const line of lines) {
    const x = line.rest_um * (1 + z);
    if (x < range[0] || x > range[1]) continue;
    const color = LINE_COLORS[line.kind] || '#555';
    shapes.push({type: 'line', xref: 'x', yref: 'paper', x0: x, x1: x, y0: 0, y1: 1, name: `line ${line.name}`,
      line: {color: alpha(color, 0.55), width: 1, dash: line.kind === 'absorption' ? 'dot' : 'dash'}});
    if (x - lastLabel >= minGap) {
      annotations.push({text: line.name, x, xref: 'x', y: 1, yref: 'paper', textangle: -90, showarrow: false,
        xanchor: 'right', yanchor: 'top', font: {size: 10, color}, meta: 'line'});
      lastLabel = x;
    }
  }
  return {shapes, annotations};
}

export function chi2Figure(view, z) {
  const traces = [];
  view.spectra.forEach((s, i) => {
    if (!s.fit) return;
    const color = colorOf(s);
    // 1 + Δχ² on a log axis: every fit's minimum sits at 1, alternatives show how much worse they are
    const best = s.fit.chi2_min;
    traces.push({x: s.fit.z_grid, y: s.fit.chi2_grid.map((c) => (c === null ? null : 1 + Math.max(c - best, 0))),
      type: 'scatter', mode: 'lines', name: labelOf(s), line: {color, width: 1.2}, meta: {role: 'chi2', spectrum_id: s.spectrum_id},
      customdata: s.fit.chi2_grid, hovertemplate: `${labelOf(s)}<br>z %{x:.4f}<br>χ² %{customdata:.1f}<extra></extra>`});
    const alts = s.fit.alternatives || [];
    traces.push({x: alts.map((a) => a.z), y: alts.map((a) => 1 + a.dchi2), type: 'scatter',
      mode: 'markers+text', name: `${labelOf(s)} best solutions`, showlegend: false,
      text: alts.map((_, k) => String(k + 1)), textposition: 'top center', textfont: {size: 10, color},
      marker: {symbol: 'diamond', size: 9, color, line: {color: '#fff', width: 1}},
      meta: {role: 'alternatives', spectrum_id: s.spectrum_id},
      hovertemplate: `${labelOf(s)} solution %{text}<br>z %{x:.4f}, Δχ² %{customdata:.1f}<br>click to use<extra></extra>`,
      customdata: alts.map((a) => a.dchi2)});
  });
  const layout = {
    height: 250, margin: {l: 70, r: 20, t: 10, b: 45}, font: FONT, hovermode: 'closest', showlegend: true,
    legend: {orientation: 'h', x: 1, xanchor: 'right', y: 1, yanchor: 'top', bgcolor: 'rgba(255,255,255,0.8)', font: {size: 11}},
    paper_bgcolor: '#fff', plot_bgcolor: '#fff',
    xaxis: {title: {text: 'redshift z'}, showline: true, mirror: true, linecolor: '#8896a5', ticks: 'outside', gridcolor: '#eef1f4', zeroline: false},
    yaxis: {title: {text: '1 + Δχ²'}, type: 'log', dtick: 1, exponentformat: 'power', showline: true, mirror: true,
      linecolor: '#8896a5', ticks: 'outside', gridcolor: '#eef1f4'},
    shapes: zMarker(z),
  };
  return {traces, layout};
}

export function zMarker(z) {
  if (z === null || !Number.isFinite(z)) return [];
  return [{type: 'line', xref: 'x', yref: 'paper', x0: z, x1: z, y0: 0, y1: 1, line: {color: '#e4572e', width: 1.5}}];
}

export function cutoutFigure(imageUrl, shutters, fov) {
  const half = fov / 2;
  const styles = {target: '#00d5ff', other: '#ffd54f', stuck_closed: '#ff5252'};
  const names = {target: 'this object\'s shutters', other: 'other sources\' shutters', stuck_closed: 'stuck closed'};
  const traces = [];
  for (const category of Object.keys(styles)) {
    const x = [];
    const y = [];
    for (const s of (shutters && shutters.shutters) || []) {
      if (s.category !== category) continue;
      for (const [e, n] of [...s.corners, s.corners[0]]) { x.push(e); y.push(n); }
      x.push(null); y.push(null);
    }
    if (x.length) {
      traces.push({x, y, type: 'scatter', mode: 'lines', name: names[category], line: {color: styles[category], width: 1.6},
        hoverinfo: 'name', meta: {role: 'shutters', category}});
    }
  }
  traces.push({x: [0], y: [0], type: 'scatter', mode: 'markers', name: 'object', marker: {symbol: 'cross-thin', size: 14,
    line: {color: '#ff3b30', width: 2}}, hoverinfo: 'name'});
  const layout = {
    height: 360, margin: {l: 50, r: 10, t: 10, b: 90}, font: FONT, showlegend: true,
    legend: {orientation: 'h', x: 0, y: -0.3, yanchor: 'top', font: {size: 10}}, paper_bgcolor: '#fff', plot_bgcolor: '#0b0f14',
    xaxis: {title: {text: 'east offset [″] (east ←)'}, range: [half, -half], zeroline: false, showgrid: false, ticks: 'outside'},
    yaxis: {title: {text: 'north offset [″]'}, range: [-half, half], scaleanchor: 'x', zeroline: false, showgrid: false, ticks: 'outside'},
    images: imageUrl ? [{source: imageUrl, xref: 'x', yref: 'y', x: half, y: half, sizex: fov, sizey: fov,
      sizing: 'stretch', layer: 'below'}] : [],
    annotations: imageUrl ? [] : [{text: 'no imaging covers this object', xref: 'paper', yref: 'paper', x: 0.5, y: 0.5,
      showarrow: false, font: {color: '#ccc'}}],
  };
  return {traces, layout};
}
