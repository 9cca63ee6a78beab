// Grading an object: the redshift (automatic fit, its alternatives, a clicked line, typed,
// refit), the quality 0-4, issue flags and comment; saving them as an inspection record;
// the consensus and history; the n/p queue over the selection's ungraded objects.
import {api, el, toast} from './portal.js';

const QUEUE_KEY = 'campfire-queue';

export class Inspector {
  constructor(data, onRedshift) {
    this.data = data;
    this.onRedshift = onRedshift;  // called with the new candidate z
    this.form = document.getElementById('inspect-form');
    this.zInput = document.getElementById('z-input');
    this.candidates = [];
    this.candidateIndex = -1;
    if (this.form) this.wire();
  }

  wire() {
    this.zInput.addEventListener('input', () => {
      const z = this.redshift();
      if (z !== null) this.onRedshift(z, false);
    });
    this.zInput.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') { event.preventDefault(); this.zInput.blur(); }
    });
    document.getElementById('comment')?.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) { event.preventDefault(); this.save(); }
    });
    this.form.addEventListener('submit', (event) => { event.preventDefault(); this.save(); });
    this.form.querySelector('[data-action="accept"]').addEventListener('click', () => this.acceptAuto());
    this.form.querySelector('[data-action="refit"]').addEventListener('click', () => this.refit());
  }

  // -- redshift -------------------------------------------------------------------------
  redshift() {
    if (!this.zInput) return null;
    const text = this.zInput.value.trim();
    if (text === '') return null;
    const z = Number(text);
    return Number.isFinite(z) && z >= 0 && z <= 30 ? z : null;
  }

  setRedshift(z, source) {
    if (this.zInput) this.zInput.value = z.toFixed(5);
    this.onRedshift(z, true);
    if (source) toast(`z = ${z.toFixed(4)} (${source})`);
  }

  setCandidates(candidates) {
    this.candidates = candidates;
    const box = document.getElementById('alternatives');
    if (!box) return;
    box.replaceChildren(...candidates.map((c, i) => el('button', {
      type: 'button', class: 'alt', title: `${c.source}: Δχ² = ${c.dchi2.toFixed(1)}`,
      onclick: () => { this.candidateIndex = i; this.setRedshift(c.z, `solution ${i + 1} of ${c.source}`); },
    }, `${i + 1}: z=${c.z.toFixed(3)}`, el('small', {}, c.other ? ` ${c.source} best` : (c.dchi2 === 0 ? ' best' : ` Δχ² ${c.dchi2.toFixed(0)}`)))));
    if (candidates.length) box.prepend(el('span', {class: 'muted'}, 'solutions (o): '));
  }

  acceptAuto() {
    const z = this.data.redshift_auto ?? (this.candidates[0] && this.candidates[0].z);
    if (z === null || z === undefined) { toast('no automatic redshift for this object', 'error'); return; }
    this.candidateIndex = 0;
    this.setRedshift(z, 'automatic fit');
  }

  cycleCandidates() {
    if (!this.candidates.length) return;
    this.candidateIndex = (this.candidateIndex + 1) % this.candidates.length;
    const c = this.candidates[this.candidateIndex];
    this.setRedshift(c.z, `solution ${this.candidateIndex + 1} of ${c.source}`);
  }

  async refit() {
    if (!this.mayGrade) return;
    const z = this.redshift();
    if (z === null) { toast('type or choose a redshift to refit near first', 'error'); return; }
    const dz = Math.max(0.02, 0.01 * (1 + z));
    toast(`refitting near z = ${z.toFixed(3)}…`);
    try {
      const fit = await api('POST', `/api/v1/objects/${encodeURIComponent(this.data.object_id)}/refit`,
        {z_center: z, dz: Math.min(dz, 0.5)});
      this.setRedshift(fit.redshift, `refit near ${z.toFixed(3)}`);
      document.dispatchEvent(new CustomEvent('campfire:refit', {detail: fit}));
    } catch (err) {
      toast(`refit failed: ${err.message}`, 'error');
    }
  }

  // -- grade ------------------------------------------------------------------------------
  setQuality(value) {
    const radio = this.form?.querySelector(`input[name="quality"][value="${value}"]`);
    if (radio) { radio.checked = true; radio.focus({preventScroll: true}); radio.blur(); }
  }

  toggleIssue(name) {
    const box = this.form?.querySelector(`input[name="issues"][value="${name}"]`);
    if (box) box.checked = !box.checked;
  }

  async save() {
    if (!this.form || !this.mayGrade) return;
    const quality = this.form.querySelector('input[name="quality"]:checked');
    const status = document.getElementById('save-status');
    if (!quality) { toast('choose a quality first (keys 0–4)', 'error'); return; }
    const body = {
      redshift: this.redshift(),
      quality: Number(quality.value),
      comment: document.getElementById('comment').value,
      issues: Array.from(this.form.querySelectorAll('input[name="issues"]:checked')).map((b) => b.value),
    };
    const resolves = this.form.querySelector('input[name="resolves_conflict"]');
    if (resolves && resolves.checked) body.resolves_conflict = true;
    if (this.zInput.value.trim() !== '' && body.redshift === null) {
      toast('the redshift must be a number between 0 and 30', 'error');
      return;
    }
    const started = performance.now();
    status.textContent = 'saving…';
    try {
      const result = await api('POST', `/api/v1/objects/${encodeURIComponent(this.data.object_id)}/inspections`, body);
      const ms = performance.now() - started;
      status.textContent = `saved (${ms.toFixed(0)} ms)`;
      status.dataset.saveMs = ms.toFixed(1);
      status.dataset.saved = String((Number(status.dataset.saved) || 0) + 1);
      toast('inspection saved');
      this.showConsensus(result.consensus);
      await this.loadHistory();
    } catch (err) {
      status.textContent = '';
      toast(`not saved: ${err.message}`, 'error');
    }
  }

  // -- consensus and history ---------------------------------------------------------------
  showConsensus(consensus) {
    const box = document.getElementById('consensus');
    if (!box || !consensus) return;
    const state = consensus.state || 'none';
    const parts = [el('span', {class: `state ${state}`, 'data-state': state}, state)];
    if (consensus.redshift !== null && consensus.redshift !== undefined) parts.push(` z = ${Number(consensus.redshift).toFixed(4)}`);
    if (consensus.quality !== null && consensus.quality !== undefined) {
      parts.push(' · quality ', el('span', {class: `quality q${consensus.quality}`, id: 'consensus-quality'},
        `${consensus.quality} ${this.data.qualities[String(consensus.quality)] || ''}`));
    }
    if (consensus.n_reviewers !== undefined) parts.push(el('span', {class: 'muted'}, ` · ${consensus.n_reviewers} reviewer${consensus.n_reviewers === 1 ? '' : 's'}`));
    box.replaceChildren(el('strong', {}, 'consensus: '), ...parts);
    const zi = document.getElementById('z-inspected');
    if (zi && state !== 'hidden') zi.textContent = consensus.redshift === null || consensus.redshift === undefined ? '—' : Number(consensus.redshift).toFixed(4);
    const q = document.getElementById('object-quality');
    if (q && state !== 'hidden' && consensus.quality !== undefined && consensus.quality !== null) {
      q.className = `quality q${consensus.quality}`;
      q.textContent = `${consensus.quality} ${this.data.qualities[String(consensus.quality)] || ''}`;
    }
  }

  // the server says what this reviewer may do here; the form follows (the server checks again)
  showRights(result) {
    this.mayGrade = Boolean(result.may_inspect);
    for (const part of document.querySelectorAll('.grading')) part.hidden = !this.mayGrade;
    const denied = document.getElementById('inspect-denied');
    if (denied) denied.hidden = this.mayGrade || !this.data.user;
    const resolve = document.getElementById('resolve-box');
    if (resolve) resolve.hidden = !result.may_resolve;
  }

  async loadHistory() {
    const body = document.querySelector('#history tbody');
    if (!body) return;
    let result;
    try {
      result = await api('GET', `/api/v1/objects/${encodeURIComponent(this.data.object_id)}/inspections`);
    } catch (err) {
      body.replaceChildren(el('tr', {}, el('td', {colspan: 6, class: 'muted'}, `inspections unavailable: ${err.message}`)));
      return;
    }
    this.showConsensus(result.consensus);
    this.showRights(result);
    const records = result.inspections || [];
    if (!records.length) {
      const hidden = result.consensus && result.consensus.state === 'hidden';
      body.replaceChildren(el('tr', {}, el('td', {colspan: 6, class: 'muted'},
        hidden ? 'others\' grades are shown after you give yours (blind mode)' : 'not inspected yet')));
      return;
    }
    body.replaceChildren(...records.slice().reverse().map((r) => el('tr', {'data-inspection-id': r.inspection_id, class: r.outdated ? 'outdated' : ''},
      el('td', {class: 'small'}, (r.created_at || '').replace('T', ' ').slice(0, 19)),
      el('td', {}, r.reviewer, r.resolves_conflict ? el('span', {class: 'badge'}, 'resolution') : null),
      el('td', {class: 'num'}, r.redshift === null || r.redshift === undefined ? '—' : Number(r.redshift).toFixed(4)),
      el('td', {}, el('span', {class: `quality q${r.quality}`}, `${r.quality} ${r.quality_name || ''}`)),
      el('td', {class: 'small'}, (r.issues || []).join(', '), r.outdated ? el('span', {class: 'badge', title: 'a spectrum changed since this grade'}, 'older file') : null),
      el('td', {class: 'comment'}, r.comment || ''),
    )));
  }
}

// -- the queue: n/p over the selection's objects this reviewer has not graded -------------------
function readQueue() {
  try { return JSON.parse(sessionStorage.getItem(QUEUE_KEY)) || null; } catch (err) { return null; }
}

function writeQueue(queue) {
  sessionStorage.setItem(QUEUE_KEY, JSON.stringify(queue));
}

async function fetchQueue(selection, mode) {
  const params = new URLSearchParams(selection);
  params.set('mode', mode);
  params.set('limit', '1000');
  const result = await api('GET', `/api/v1/inspections/queue?${params}`);
  return result.object_ids || result.objects || [];
}

// The queue is a list kept for this browser tab: it starts at the current object and holds the
// selection's ungraded objects in the selection's order; n moves forward (fetching more from the
// server at its end), p back, so a skipped or just-graded object stays reachable with p.
export async function step(data, direction) {
  const status = document.getElementById('queue-status');
  const mode = data.queue_mode || 'ungraded';
  const current = data.object_id;
  let queue = readQueue();
  try {
    if (!queue || queue.selection !== data.selection || queue.mode !== mode || !queue.ids.includes(current)) {
      const ids = await fetchQueue(data.selection, mode);
      queue = {selection: data.selection, mode, ids: [current, ...ids.filter((id) => id !== current)]};
    } else if (direction > 0 && queue.ids.indexOf(current) === queue.ids.length - 1) {
      const ids = await fetchQueue(data.selection, mode);
      queue.ids.push(...ids.filter((id) => !queue.ids.includes(id)));
    }
  } catch (err) {
    toast(`queue unavailable: ${err.message}`, 'error');
    return;
  }
  writeQueue(queue);
  const target = queue.ids[queue.ids.indexOf(current) + direction];
  if (!target) {
    const message = direction > 0 ? `no more ${mode === 'conflicts' ? 'conflicts' : 'ungraded objects'} in this selection`
      : 'this is the first object of the queue';
    if (status) status.textContent = message;
    toast(message);
    return;
  }
  const query = new URLSearchParams(data.selection);
  if (mode !== 'ungraded') query.set('queue', mode);
  const qs = query.toString();
  window.location.href = `/objects/${encodeURIComponent(target)}${qs ? `?${qs}` : ''}`;
}
