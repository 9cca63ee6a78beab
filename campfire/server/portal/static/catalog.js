// The catalog page: row selection and tagging, keyboard navigation of the table.
import {api, onKeys, pageData, toast} from './portal.js';

const data = pageData();
const table = document.getElementById('catalog-table');
const rows = () => Array.from(table.querySelectorAll('tbody tr[data-object-id]'));
const boxes = () => Array.from(table.querySelectorAll('input.row-select'));
let current = -1;

function selectedIds() {
  return boxes().filter((b) => b.checked).map((b) => b.value);
}

function refreshSelection() {
  const count = document.getElementById('selected-count');
  if (!count) return;
  const n = selectedIds().length;
  count.textContent = String(n);
  const target = document.getElementById('tag-target');
  const usable = n > 0 && target && target.value;
  for (const id of ['tag-add', 'tag-remove']) {
    const button = document.getElementById(id);
    if (button) button.disabled = !usable;
  }
  for (const row of rows()) row.classList.toggle('selected', row.querySelector('input.row-select')?.checked || false);
}

table.addEventListener('change', (event) => {
  if (event.target.id === 'select-page') {
    for (const box of boxes()) box.checked = event.target.checked;
  }
  refreshSelection();
});
document.getElementById('tag-target')?.addEventListener('change', refreshSelection);

async function changeTag(add) {
  const slug = document.getElementById('tag-target').value;
  const ids = selectedIds();
  if (!slug || !ids.length) return;
  const url = `/api/v1/tags/${encodeURIComponent(slug)}/objects`;
  try {
    const result = await api(add ? 'POST' : 'DELETE', url, {object_ids: ids});
    const changed = add ? result.added : result.removed;
    toast(`${changed} object${changed === 1 ? '' : 's'} ${add ? 'added to' : 'removed from'} ${data.user}/${slug} (now ${result.member_count})`);
    setTimeout(() => window.location.reload(), 600);
  } catch (err) {
    toast(`Tagging failed: ${err.message}`, 'error');
  }
}
document.getElementById('tag-add')?.addEventListener('click', () => changeTag(true));
document.getElementById('tag-remove')?.addEventListener('click', () => changeTag(false));

function moveTo(index) {
  const all = rows();
  if (!all.length) return;
  current = Math.max(0, Math.min(all.length - 1, index));
  all.forEach((row, i) => row.classList.toggle('current', i === current));
  all[current].scrollIntoView({block: 'nearest'});
}

function follow(selector) {
  const link = document.querySelector(selector);
  if (link) window.location.href = link.href;
}

function openCurrent() {
  const row = rows()[current];
  const link = row && row.querySelector('td.id a');
  if (link) window.location.href = link.href;
}

onKeys({
  '/': () => document.getElementById('f-search')?.focus(),
  j: () => moveTo(current + 1),
  k: () => moveTo(current - 1),
  o: openCurrent,
  Enter: openCurrent,
  x: () => {
    const box = rows()[current]?.querySelector('input.row-select');
    if (box) { box.checked = !box.checked; refreshSelection(); }
  },
  ']': () => follow('#page-next'),
  '[': () => follow('#page-prev'),
});
refreshSelection();

// the total of a selection the server had not counted yet: fetched after the page is shown
async function fillTotal() {
  const box = document.getElementById('total');
  if (!box || !box.dataset.pending) return;
  const query = data.selection ? `?${data.selection}` : '';
  let total;
  try {
    total = (await api('GET', `/objects.count${query}`)).total;
  } catch (err) {
    box.textContent = '?';
    toast(`could not count this selection: ${err.message}`, 'error');
    return;
  }
  const pages = Math.max(1, Math.ceil(total / data.per_page));
  box.textContent = total.toLocaleString('en-US');
  box.dataset.total = String(total);
  delete box.dataset.pending;
  for (const id of ['page-info', 'pager-position']) {
    const node = document.getElementById(id);
    if (node) node.textContent = `${node.textContent.replace(/ of [\d,]+$/, '')} of ${pages.toLocaleString('en-US')}`;
  }
  const next = document.getElementById('page-next');
  if (next && !document.getElementById('page-last')) {
    const params = new URLSearchParams(data.selection);
    params.set('page', String(pages));
    if (data.per_page !== 100) params.set('per_page', String(data.per_page));
    next.after(' ', Object.assign(document.createElement('a'), {href: `/?${params}`, rel: 'last', id: 'page-last', textContent: 'last »'}));
  }
}
fillTotal();
