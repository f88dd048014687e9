// @ts-check
/**
 * Form pieces of the admin console: labelled inputs, editable lists, and
 * the card that saves one settings section (PUT /api/v1/settings/{section})
 * or resets it (DELETE), showing the server's errors next to the fields.
 *
 * @module
 */

import { api, ApiError, sentence } from '../api.js';
import { clearFieldError, clearFieldErrors, showFieldErrors } from '../ui/fields.js';
import { button, errorLine, h, setError, setStatus, statusLine, uid } from './dom.js';

/** @typedef {import('../api.js').FieldProblem} FieldProblem */

/**
 * @typedef {object} FieldOptions
 * @property {string} label
 * @property {string} [field]        the API's path for it, e.g. `max_members`
 * @property {string} [hint]
 * @property {string} [placeholder]
 * @property {string} [autocomplete] default `off`
 * @property {string} [inputmode]
 * @property {string} [className]   extra class of the wrapper
 */

/**
 * @typedef {object} Field
 * @property {HTMLElement} wrap
 * @property {HTMLInputElement} input
 */

/**
 * @param {HTMLInputElement | HTMLSelectElement | HTMLTextAreaElement} control
 * @param {FieldOptions} o
 * @returns {HTMLElement}
 */
function wrapField(control, o) {
  const id = uid('f');
  control.id = id;
  if (o.field) control.dataset.field = o.field;
  const hint = o.hint ? h('p', { class: 'hint', id: `${id}-hint`, text: o.hint }) : null;
  if (hint) control.setAttribute('aria-describedby', hint.id);
  return h('div', { class: `field${o.className ? ` ${o.className}` : ''}` },
    h('label', { for: id, text: o.label }), control, hint);
}

/**
 * A one-line text input.
 * @param {FieldOptions & {type?: string, value?: string}} o
 * @returns {Field}
 */
export function textField(o) {
  const input = h('input', {
    type: o.type ?? 'text',
    placeholder: o.placeholder,
    autocomplete: o.autocomplete ?? 'off',
    autocapitalize: 'none',
    spellcheck: 'false',
    inputmode: o.inputmode,
  });
  input.value = o.value ?? '';
  return { wrap: wrapField(input, o), input };
}

/**
 * A whole-number input. The range is the browser's hint only: the server
 * checks it and says what is allowed.
 * @param {FieldOptions & {min?: number, max?: number}} o
 * @returns {Field}
 */
export function numberField(o) {
  const input = h('input', { type: 'number', step: 1, min: o.min, max: o.max, inputmode: 'numeric', placeholder: o.placeholder });
  return { wrap: wrapField(input, { ...o, className: `narrow${o.className ? ` ${o.className}` : ''}` }), input };
}

/**
 * A secret (password, API key, token): hidden, with a button to show it.
 * @param {FieldOptions} o
 * @returns {Field}
 */
export function secretField(o) {
  const input = h('input', {
    type: 'password',
    autocomplete: o.autocomplete ?? 'off',
    spellcheck: 'false',
    autocapitalize: 'none',
    placeholder: o.placeholder,
  });
  const wrap = wrapField(input, o);
  const toggle = button('Show', () => {
    const hidden = input.type === 'password';
    input.type = hidden ? 'text' : 'password';
    toggle.textContent = hidden ? 'Hide' : 'Show';
    toggle.setAttribute('aria-pressed', String(hidden));
  }, { class: 'secondary small', 'aria-pressed': 'false', 'aria-label': `Show ${o.label.toLowerCase()}` });
  const box = h('div', { class: 'input-with-button' });
  input.replaceWith(box);
  box.append(input, toggle);
  return { wrap, input };
}

/**
 * A drop-down.
 * @param {FieldOptions & {options: Array<[string, string]>}} o `[value, label]` pairs
 * @returns {{wrap: HTMLElement, input: HTMLSelectElement}}
 */
export function selectField(o) {
  const input = h('select', {});
  for (const [value, label] of o.options) input.append(h('option', { value, text: label }));
  return { wrap: wrapField(input, o), input };
}

/**
 * A multi-line text input.
 * @param {FieldOptions & {rows?: number}} o
 * @returns {{wrap: HTMLElement, input: HTMLTextAreaElement}}
 */
export function textareaField(o) {
  const input = h('textarea', { rows: o.rows ?? 4, spellcheck: 'false', placeholder: o.placeholder });
  return { wrap: wrapField(input, o), input };
}

/**
 * A checkbox with its label on the right.
 * @param {FieldOptions} o
 * @returns {Field}
 */
export function checkField(o) {
  const input = h('input', { type: 'checkbox' });
  const id = uid('f');
  input.id = id;
  if (o.field) input.dataset.field = o.field;
  const hint = o.hint ? h('p', { class: 'hint', id: `${id}-hint`, text: o.hint }) : null;
  if (hint) input.setAttribute('aria-describedby', hint.id);
  const wrap = h('div', { class: 'field check-field' },
    h('div', { class: 'check-line' }, input, h('label', { for: id, text: o.label })), hint);
  return { wrap, input };
}

/**
 * A number input's value for the API: a number, or what was typed when it
 * is none (the server then names the field).
 * @param {HTMLInputElement} input
 * @returns {number | string | null}
 */
export function numberValue(input) {
  const text = input.value.trim();
  if (text === '') return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

/**
 * Shows `value` in a number input ('' for none).
 * @param {HTMLInputElement} input
 * @param {unknown} value
 */
export function setNumber(input, value) {
  input.value = typeof value === 'number' ? String(value) : '';
}

// ---------------------------------------------------------------------------
// Editable lists

/**
 * @template T
 * @typedef {object} ListRow
 * @property {HTMLElement} element the row's inputs
 * @property {() => T} read
 */

/**
 * @template T
 * @typedef {object} ListOptions
 * @property {string} field      the list's path, e.g. `servers`
 * @property {string} label      shown above the list
 * @property {string} itemName   one item, for buttons: "STUN server"
 * @property {number} max
 * @property {() => T} blank     a new row's value
 * @property {(value: T, path: string, index: number) => ListRow<T>} row
 * @property {boolean} [reorder] with move up/down buttons
 * @property {string} [hint]
 * @property {string} [emptyText]
 * @property {string} [addText]  the add button's text, default "Add <itemName>"
 */

/**
 * @template T
 * @typedef {object} ListEditor
 * @property {HTMLElement} element
 * @property {() => T[]} read
 * @property {(values: T[]) => void} set
 * @property {(value?: T) => boolean} add appends a row (false when full) and focuses it
 */

/**
 * A list of rows that can be added, removed and (optionally) reordered,
 * at most `max` of them. Row inputs carry `data-field` paths such as
 * `servers[2]`, renumbered whenever the list changes shape.
 * @template T
 * @param {ListOptions<T>} o
 * @returns {ListEditor<T>}
 */
export function listEditor(o) {
  const labelId = uid('list');
  const hint = o.hint ? h('p', { class: 'hint', id: `${labelId}-hint`, text: o.hint }) : null;
  const rowsEl = h('ol', { class: 'list-rows' });
  const empty = h('p', { class: 'hint list-empty', text: o.emptyText ?? 'None.' });
  const count = h('span', { class: 'hint list-count', 'aria-live': 'polite' });
  const addButton = button(o.addText ?? `Add ${o.itemName}`, () => { editor.add(); },
    { class: 'secondary small', 'data-action': 'add' });
  const element = h('div', { class: 'list-editor', 'data-field': o.field, role: 'group', 'aria-labelledby': labelId },
    h('div', { class: 'list-label', id: labelId, text: o.label }),
    hint,
    rowsEl,
    empty,
    h('div', { class: 'list-foot' }, addButton, count),
    h('div', { 'data-errors': '' }));

  /** @type {Array<ListRow<T>>} */
  let rows = [];

  /** Tells the enclosing form the list changed (for its unsaved-changes state). */
  const changed = () => element.dispatchEvent(new Event('input', { bubbles: true }));

  const updateFoot = () => {
    empty.hidden = rows.length > 0;
    addButton.disabled = rows.length >= o.max;
    count.textContent = `${rows.length} of at most ${o.max}`;
  };

  /** @param {number} index */
  const focusRow = (index) => {
    const li = rowsEl.children[index];
    const target = li?.querySelector('input, select, textarea');
    if (target instanceof HTMLElement) target.focus();
    else addButton.focus();
  };

  /**
   * @param {T} value
   * @param {number} index
   * @param {number} total
   */
  const buildRow = (value, index, total) => {
    const path = `${o.field}[${index}]`;
    const row = o.row(value, path, index);
    const n = index + 1;
    const actions = h('div', { class: 'list-row-actions' });
    if (o.reorder) {
      actions.append(
        button('↑', () => move(index, index - 1), {
          class: 'icon-button', 'aria-label': `Move ${o.itemName} ${n} up`, title: 'Move up',
          'data-action': 'up', disabled: index === 0,
        }),
        button('↓', () => move(index, index + 1), {
          class: 'icon-button', 'aria-label': `Move ${o.itemName} ${n} down`, title: 'Move down',
          'data-action': 'down', disabled: index === total - 1,
        }),
      );
    }
    actions.append(button('Remove', () => remove(index), {
      class: 'secondary small', 'aria-label': `Remove ${o.itemName} ${n}`, 'data-action': 'remove',
    }));
    rowsEl.append(h('li', { class: 'list-row', 'data-error-slot': '' },
      h('div', { class: 'list-row-fields' }, row.element), actions));
    return row;
  };

  /** @param {T[]} values */
  const set = (values) => {
    rowsEl.replaceChildren();
    rows = values.map((v, i) => buildRow(v, i, values.length));
    updateFoot();
  };

  const read = () => rows.map((r) => r.read());

  /** @param {number} index */
  const remove = (index) => {
    const values = read();
    values.splice(index, 1);
    set(values);
    focusRow(Math.min(index, values.length - 1));
    changed();
  };

  /**
   * @param {number} from
   * @param {number} to
   */
  const move = (from, to) => {
    const values = read();
    if (to < 0 || to >= values.length) return;
    const [item] = values.splice(from, 1);
    values.splice(to, 0, item);
    set(values);
    const again = rowsEl.children[to]?.querySelector(`[data-action="${to < from ? 'up' : 'down'}"]`);
    if (again instanceof HTMLButtonElement && !again.disabled) again.focus();
    else focusRow(to);
    changed();
  };

  /** @type {ListEditor<T>} */
  const editor = {
    element,
    read,
    set,
    add(value) {
      if (rows.length >= o.max) return false;
      const values = read();
      values.push(value === undefined ? o.blank() : value);
      set(values);
      focusRow(values.length - 1);
      changed();
      return true;
    },
  };
  updateFoot();
  return editor;
}

/**
 * A row of a list of strings: one text input.
 * @param {{itemName: string, placeholder?: string, inputmode?: string}} o
 * @returns {(value: string, path: string, index: number) => ListRow<string>}
 */
export function stringRow(o) {
  return (value, path, index) => {
    const input = h('input', {
      type: 'text',
      'aria-label': `${o.itemName} ${index + 1}`,
      placeholder: o.placeholder,
      autocomplete: 'off',
      autocapitalize: 'none',
      spellcheck: 'false',
      inputmode: o.inputmode,
      'data-field': path,
    });
    input.value = value;
    return { element: input, read: () => input.value.trim() };
  };
}

// ---------------------------------------------------------------------------
// Settings sections

/**
 * What a settings form provides to its card.
 * @template T
 * @typedef {object} SectionForm
 * @property {HTMLElement[]} fields
 * @property {(value: T) => void} render shows a stored value
 * @property {() => T} read              the value to store
 */

/**
 * One settings section's card.
 * @template T
 * @typedef {object} SectionCard
 * @property {string} key
 * @property {string} title
 * @property {HTMLElement} element
 * @property {(value: T) => void} render
 * @property {() => T} read
 * @property {() => boolean} dirty   whether the form differs from what is stored
 * @property {(error: unknown) => void} showError shows a refusal with the fields marked
 * @property {() => void} clearErrors
 */

/**
 * Problems the browser knows of before sending: number inputs that hold no number.
 * @param {HTMLElement} root
 * @returns {FieldProblem[]}
 */
function localProblems(root) {
  /** @type {FieldProblem[]} */
  const out = [];
  for (const input of root.querySelectorAll('input[type="number"]')) {
    if (!(input instanceof HTMLInputElement) || !input.dataset.field) continue;
    if (input.validity.badInput || input.value.trim() === '') {
      out.push({ field: input.dataset.field, rule: 'number', message: 'Enter a whole number.' });
    }
  }
  return out;
}

/**
 * The card that edits settings section `key`: its form, Save (PUT with the
 * whole section), Reset to defaults (DELETE), a status line, and errors.
 * @template T
 * @param {{
 *   key: string,
 *   title: string,
 *   intro?: string | Node,
 *   form: SectionForm<T>,
 *   value: T,
 *   onSaved?: (value: T) => void,
 * }} o
 * @returns {SectionCard<T>}
 */
export function sectionCard(o) {
  const headingId = uid('card-title');
  const status = statusLine();
  const error = errorLine();
  const save = h('button', { type: 'submit', class: 'primary', text: 'Save', 'data-action': 'save' });
  const reset = button('Reset to defaults', () => { resetSection(); }, { 'data-action': 'reset' });
  const form = h('form', { class: 'card-form', novalidate: true, 'aria-labelledby': headingId },
    ...o.form.fields,
    error,
    h('div', { class: 'card-actions' }, save, reset, status));
  const element = h('section', { class: 'card', 'data-section': o.key, 'aria-labelledby': headingId },
    h('div', { class: 'card-head' }, h('h2', { id: headingId, text: o.title })),
    typeof o.intro === 'string' ? h('p', { class: 'card-intro', text: o.intro }) : o.intro ?? null,
    form);

  let baseline = '';
  let busy = false;

  /** @param {T} value */
  const render = (value) => {
    o.form.render(value);
    // Compared with what the form reads back, so a form that omits empty
    // optional fields is not "changed" by merely being shown.
    baseline = JSON.stringify(o.form.read());
  };

  const dirty = () => JSON.stringify(o.form.read()) !== baseline;

  const clearErrors = () => {
    clearFieldErrors(form);
    setError(error, '');
  };

  /** @param {unknown} err */
  const showError = (err) => {
    clearErrors();
    if (!(err instanceof ApiError)) {
      setError(error, 'Not saved: something went wrong. Try again.');
      return;
    }
    const unplaced = showFieldErrors(form, err.fields);
    if (err.fields.length > 0 && unplaced.length === 0) {
      setError(error, err.fields.length === 1
        ? 'Not saved: see the marked field.'
        : 'Not saved: see the marked fields.');
    } else if (unplaced.length > 0) {
      setError(error, `Not saved: ${unplaced.map((p) => sentence(p.message)).join(' ')}`);
    } else {
      setError(error, `Not saved: ${sentence(err.message)}`);
    }
  };

  /** @param {boolean} on */
  const setBusy = (on) => {
    busy = on;
    save.disabled = on;
    reset.disabled = on;
    form.setAttribute('aria-busy', String(on));
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (busy) return;
    clearErrors();
    const local = localProblems(form);
    if (local.length > 0) {
      showError(new ApiError(422, 'invalid', 'invalid', local));
      setStatus(status, '');
      return;
    }
    setBusy(true);
    setStatus(status, 'Saving…', 'busy');
    try {
      /** @type {T} */
      const stored = await api('PUT', `/api/v1/settings/${o.key}`, o.form.read());
      render(stored);
      setStatus(status, 'Saved', 'ok');
      o.onSaved?.(stored);
    } catch (err) {
      setStatus(status, '');
      showError(err);
    } finally {
      setBusy(false);
    }
  });

  const resetSection = async () => {
    if (busy) return;
    if (!confirm(`Reset “${o.title}” to the defaults? The stored values are replaced at once.`)) return;
    clearErrors();
    setBusy(true);
    setStatus(status, 'Resetting…', 'busy');
    try {
      /** @type {T} */
      const stored = await api('DELETE', `/api/v1/settings/${o.key}`);
      render(stored);
      setStatus(status, 'Reset to defaults', 'ok');
      o.onSaved?.(stored);
    } catch (err) {
      setStatus(status, '');
      showError(err);
    } finally {
      setBusy(false);
    }
  };

  const edited = (/** @type {Event} */ event) => {
    if (event.target instanceof Element) clearFieldError(event.target);
    // Once the marked fields are gone (edited, or their rows removed), so is the summary.
    if (!error.hidden && !form.querySelector('.field-error')) setError(error, '');
    if (busy) return;
    if (dirty()) setStatus(status, 'Unsaved changes', 'dirty');
    else if (status.dataset.tone === 'dirty') setStatus(status, '');
  };
  form.addEventListener('input', edited);
  form.addEventListener('change', edited);

  render(o.value);
  return { key: o.key, title: o.title, element, render, read: o.form.read, dirty, showError, clearErrors };
}

// ---------------------------------------------------------------------------
// Forms that act (create a user, add a domain...)

/**
 * A form that runs `submit` and shows its outcome: the status it returns, or
 * the server's refusal with the fields marked (inputs carry `data-field`).
 * @param {{
 *   fields: HTMLElement[],
 *   submitText: string,
 *   busyText: string,
 *   submit: () => Promise<string>,
 *   className?: string,
 *   extraButtons?: HTMLElement[],
 * }} o
 * @returns {{form: HTMLFormElement, status: HTMLElement, error: HTMLElement, setError: (message: string) => void}}
 */
export function actionForm(o) {
  const status = statusLine();
  const error = errorLine();
  const submit = h('button', { type: 'submit', class: 'primary', text: o.submitText });
  const form = h('form', { class: o.className ?? 'action-form', novalidate: true },
    ...o.fields,
    error,
    h('div', { class: 'card-actions' }, submit, ...(o.extraButtons ?? []), status));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (submit.disabled) return;
    clearFieldErrors(form);
    setError(error, '');
    submit.disabled = true;
    submit.textContent = o.busyText;
    setStatus(status, '');
    try {
      setStatus(status, await o.submit(), 'ok');
    } catch (err) {
      if (err instanceof ApiError) {
        const unplaced = showFieldErrors(form, err.fields);
        if (err.fields.length === 0) setError(error, sentence(err.message));
        else if (unplaced.length > 0) setError(error, unplaced.map((p) => sentence(p.message)).join(' '));
      } else {
        setError(error, err instanceof Error ? err.message : 'Something went wrong. Try again.');
      }
    } finally {
      submit.disabled = false;
      submit.textContent = o.submitText;
    }
  });
  form.addEventListener('input', (event) => {
    if (event.target instanceof Element) clearFieldError(event.target);
    if (status.dataset.tone === 'ok') setStatus(status, '');
  });
  return { form, status, error, setError: (message) => setError(error, message) };
}
