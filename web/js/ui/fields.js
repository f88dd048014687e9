// @ts-check
/**
 * Shows the server's field errors next to the fields they are about.
 *
 * Inputs and lists carry `data-field` with the path the API uses for them
 * (`max_members`, `servers[0].urls[1]`, `auth.token`). An error for a path no
 * element has goes to the nearest enclosing one: `servers[5]` (one too many)
 * lands on the `servers` list, `servers[0].urls` on the first server's URLs.
 *
 * @module
 */

/** @typedef {import('../api.js').FieldProblem} FieldProblem */

let nextId = 0;

/**
 * The path itself, then each enclosing path: `servers[0].urls[1]`,
 * `servers[0].urls`, `servers[0]`, `servers`.
 * @param {string} path
 * @returns {string[]}
 */
export function enclosingPaths(path) {
  /** @type {string[]} */
  const out = [];
  let rest = path;
  while (rest) {
    out.push(rest);
    const cut = rest.search(/(\[[^\]]*\]|\.[^.[]*)$/);
    if (cut <= 0) break;
    rest = rest.slice(0, cut);
  }
  return out;
}

/**
 * The element showing `path` within `root`, or the nearest enclosing one.
 * @param {ParentNode} root
 * @param {string} path
 * @returns {HTMLElement | null}
 */
export function fieldElement(root, path) {
  for (const p of enclosingPaths(path)) {
    const found = root.querySelector(`[data-field="${CSS.escape(p)}"]`);
    if (found instanceof HTMLElement) return found;
  }
  return null;
}

/** @param {Element} el */
function isControl(el) {
  return el instanceof HTMLInputElement || el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement;
}

/**
 * Puts `message` next to `target` and marks it invalid.
 * @param {HTMLElement} target an input, select, textarea or a list
 * @param {string} message
 */
export function markField(target, message) {
  const note = document.createElement('p');
  note.className = 'field-error';
  note.id = `field-error-${++nextId}`;
  note.textContent = message;
  if (isControl(target)) {
    const slot = target.closest('[data-error-slot], .field') ?? target.parentElement ?? target;
    slot.append(note);
    target.setAttribute('aria-invalid', 'true');
    const described = (target.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
    target.setAttribute('aria-describedby', [...described, note.id].join(' '));
  } else {
    const slot = target.querySelector(':scope > [data-errors]') ?? target;
    slot.append(note);
    target.dataset.invalid = 'true';
  }
}

/**
 * Removes the error marks of an edited element: its own, and those of the
 * lists it is in (a list marked for too many or too few rows, say).
 * @param {Element} edited
 */
export function clearFieldError(edited) {
  for (let node = edited.parentElement; node; node = node.parentElement) {
    if (!(node instanceof HTMLElement) || !node.dataset.invalid) continue;
    delete node.dataset.invalid;
    for (const note of node.querySelectorAll(':scope > .field-error, :scope > [data-errors] > .field-error')) note.remove();
  }
  if (edited instanceof HTMLElement && edited.dataset.invalid) {
    delete edited.dataset.invalid;
    for (const note of edited.querySelectorAll(':scope > .field-error, :scope > [data-errors] > .field-error')) note.remove();
  }
  clearControl(edited);
}

/**
 * Removes the error marks of one input, select or textarea.
 * @param {Element} control
 */
function clearControl(control) {
  if (control.getAttribute('aria-invalid') !== 'true') return;
  control.setAttribute('aria-invalid', 'false');
  const ids = (control.getAttribute('aria-describedby') ?? '').split(/\s+/).filter(Boolean);
  const kept = [];
  for (const id of ids) {
    const note = document.getElementById(id);
    if (note?.classList.contains('field-error')) note.remove();
    else kept.push(id);
  }
  if (kept.length) control.setAttribute('aria-describedby', kept.join(' '));
  else control.removeAttribute('aria-describedby');
}

/**
 * Removes every error mark within `root`.
 * @param {ParentNode} root
 */
export function clearFieldErrors(root) {
  for (const control of root.querySelectorAll('[aria-invalid="true"]')) clearControl(control);
  for (const note of root.querySelectorAll('.field-error')) note.remove();
  for (const el of root.querySelectorAll('[data-invalid]')) {
    if (el instanceof HTMLElement) delete el.dataset.invalid;
  }
}

/**
 * Marks each field error next to its field within `root`, and returns the
 * errors no element shows (to be shown with the form's message).
 * Focuses the first marked input.
 * @param {ParentNode} root
 * @param {FieldProblem[]} fields
 * @returns {FieldProblem[]}
 */
export function showFieldErrors(root, fields) {
  /** @type {FieldProblem[]} */
  const unplaced = [];
  /** @type {HTMLElement | null} */
  let first = null;
  for (const problem of fields) {
    const target = problem.field ? fieldElement(root, problem.field) : null;
    if (!target) {
      unplaced.push(problem);
      continue;
    }
    markField(target, problem.message);
    first ??= target;
  }
  if (first) {
    const focusable = isControl(first) ? first : first.querySelector('input, select, textarea, button');
    if (focusable instanceof HTMLElement) focusable.focus();
  }
  return unplaced;
}
