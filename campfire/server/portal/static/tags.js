// The tags page: create, rename, describe, share/unshare and delete your tags via /api/v1/tags.
import {api, toast} from './portal.js';

const form = document.getElementById('new-tag');
form?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const fields = new FormData(form);
  const body = {slug: fields.get('slug').trim(), name: fields.get('name').trim(),
                description: fields.get('description').trim(), shared: fields.get('shared') === 'on'};
  try {
    await api('POST', '/api/v1/tags', body);
    toast(`Created ${body.slug}`);
    window.location.reload();
  } catch (err) {
    toast(`Could not create the tag: ${err.message}`, 'error');
  }
});

for (const row of document.querySelectorAll('#own-tags tr[data-slug]')) {
  const slug = row.dataset.slug;
  const url = `/api/v1/tags/${encodeURIComponent(slug)}`;
  row.querySelector('.tag-save').addEventListener('click', async () => {
    const body = {name: row.querySelector('.tag-name').value.trim(),
                  description: row.querySelector('.tag-description').value.trim(),
                  shared: row.querySelector('.tag-shared').checked};
    row.classList.remove('saved');
    try {
      await api('PATCH', url, body);
      toast(`Saved ${row.dataset.owner}/${slug}`);
      row.classList.add('saved');
      row.dataset.saves = String((Number(row.dataset.saves) || 0) + 1);
    } catch (err) {
      toast(`Could not save ${slug}: ${err.message}`, 'error');
    }
  });
  row.querySelector('.tag-delete').addEventListener('click', async () => {
    if (!window.confirm(`Delete the tag ${row.dataset.owner}/${slug}? Its objects stay; only the tag goes.`)) return;
    try {
      await api('DELETE', url);
      toast(`Deleted ${slug}`);
      row.remove();
    } catch (err) {
      toast(`Could not delete ${slug}: ${err.message}`, 'error');
    }
  });
}
