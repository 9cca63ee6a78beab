// Shared helpers of the portal's pages: page data, CSRF-protected API calls, DOM building,
// toasts and keyboard shortcuts. No inline script anywhere: pages hand data over in
// <script type="application/json" id="page-data"> and data- attributes.

export function pageData() {
  const node = document.getElementById('page-data');
  return node ? JSON.parse(node.textContent) : {};
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : '';
}

// fetch() against campfire's own API with the session cookie and the CSRF header; throws an
// Error carrying the server's message when the answer is not 2xx
export async function api(method, url, body) {
  const headers = {Accept: 'application/json'};
  const token = csrfToken();
  if (token) headers['X-CSRF-Token'] = token;
  const init = {method, headers, credentials: 'same-origin'};
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (err) { data = null; }
  if (!response.ok) {
    const message = (data && (data.message || data.error)) || `${response.status} ${response.statusText}`;
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return data;
}

// a DOM element whose text is always text (user strings never become markup)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

let toastTimer = null;
export function toast(message, kind = 'info') {
  const box = document.getElementById('toast');
  if (!box) return;
  box.textContent = message;
  box.className = `toast ${kind}`;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { box.hidden = true; }, kind === 'error' ? 6000 : 2500);
}

export function isTyping(target) {
  if (!target) return false;
  const tag = target.tagName;
  return tag === 'TEXTAREA' || tag === 'SELECT' || (tag === 'INPUT' && !['checkbox', 'radio', 'button', 'submit'].includes(target.type)) || target.isContentEditable;
}

function toggleHelp() {
  const dialog = document.getElementById('help');
  if (!dialog) return;
  if (dialog.open) dialog.close(); else dialog.showModal();
}

// keyboard shortcuts: handlers keyed by KeyboardEvent.key; ignored while typing in a text box
// (Escape leaves it), never with Alt/Meta, and '?' always shows the list of shortcuts
export function onKeys(handlers) {
  document.addEventListener('keydown', (event) => {
    if (event.altKey || event.metaKey || event.defaultPrevented) return;
    const typing = isTyping(event.target);
    if (event.key === 'Escape' && typing) { event.target.blur(); return; }
    if (typing || event.ctrlKey) return;
    if (event.key === '?') { event.preventDefault(); toggleHelp(); return; }
    if (document.getElementById('help')?.open) return;
    const handler = handlers[event.key];
    if (handler) {
      event.preventDefault();
      handler(event);
    }
  });
}

for (const button of document.querySelectorAll('[data-help-open]')) button.addEventListener('click', toggleHelp);
