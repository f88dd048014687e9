// @ts-check
/**
 * The Users & domains page: accounts (create, edit, delete), the domains
 * logins belong to, the signed-in administrator's personal access tokens,
 * and their own password.
 *
 * @module
 */

import { api, ApiError, sentence } from '../api.js';
import { page } from './context.js';
import { button, card, errorLine, formatTime, h, setError, setStatus, statusLine, uid } from './dom.js';
import { clearFieldErrors } from '../ui/fields.js';
import { actionForm, checkField, secretField, selectField, textField } from './forms.js';

/** @typedef {import('../api.js').User} User */

/**
 * @typedef {object} Domain
 * @property {string} name
 * @property {number} users
 */

/**
 * @typedef {object} Token
 * @property {number} id
 * @property {string} name
 * @property {number} created_at
 * @property {number | null} [last_used_at]
 */

/** The shortest password the server accepts. */
const MIN_PASSWORD = 10;

/** @type {Array<[string, string]>} */
const ROLES = [['user', 'User'], ['admin', 'Administrator']];

/** @param {string} role */
const roleName = (role) => (role === 'admin' ? 'Administrator' : 'User');

/**
 * A refusal found before asking the server, shown like the server's.
 * @param {string} field
 * @param {string} message
 */
function localError(field, message) {
  return new ApiError(422, 'invalid', message, [{ field, rule: 'local', message }]);
}

/**
 * @param {unknown} err
 * @returns {string}
 */
function errorText(err) {
  return err instanceof ApiError ? sentence(err.message) : 'Something went wrong. Try again.';
}

/**
 * A table with a header row.
 * @param {string[]} columns
 * @param {HTMLTableSectionElement} body
 * @param {string} [className]
 */
function table(columns, body, className = 'data-table') {
  return h('div', { class: 'table-wrap' }, h('table', { class: className },
    h('thead', {}, h('tr', {}, ...columns.map((c) => h('th', { scope: 'col', text: c })))),
    body));
}

/**
 * Users: the list, the edit dialog and the form to add one.
 * @param {import('./context.js').ConsoleContext} ctx
 * @param {() => void} changed called after any change (domain counts move)
 */
function usersCard(ctx, changed) {
  const body = h('tbody');
  const status = statusLine();
  const error = errorLine();

  // --- edit dialog
  const titleId = uid('dialog-title');
  const dialogTitle = h('h2', { id: titleId });
  const editName = textField({ label: 'Display name', field: 'display_name', autocomplete: 'off' });
  const editRole = selectField({ label: 'Role', field: 'role', options: ROLES });
  const editDisabled = checkField({ label: 'Account disabled', field: 'disabled', hint: 'A disabled account cannot sign in.' });
  const editPassword = secretField({
    label: 'New password', field: 'password', autocomplete: 'new-password',
    hint: `Leave empty to keep the password. At least ${MIN_PASSWORD} characters.`,
  });
  /** @type {User | null} */
  let editing = null;
  /** @type {HTMLElement | null} */
  let opener = null;
  const cancel = button('Cancel', () => dialog.close());
  const edit = actionForm({
    fields: [editName.wrap, editRole.wrap, editDisabled.wrap, editPassword.wrap],
    submitText: 'Save',
    busyText: 'Saving…',
    extraButtons: [cancel],
    className: 'action-form dialog-form',
    async submit() {
      if (!editing) return '';
      /** @type {Record<string, unknown>} */
      const patch = {};
      const name = editName.input.value.trim();
      if (name !== editing.display_name) patch.display_name = name;
      if (editRole.input.value !== editing.role) patch.role = editRole.input.value;
      if (editDisabled.input.checked !== editing.disabled) patch.disabled = editDisabled.input.checked;
      if (editPassword.input.value !== '') {
        if (editPassword.input.value.length < MIN_PASSWORD) {
          throw localError('password', `The password needs at least ${MIN_PASSWORD} characters.`);
        }
        patch.password = editPassword.input.value;
      }
      const login = editing.login;
      const changes = Object.keys(patch).length;
      if (changes > 0) {
        await api('PATCH', `/api/v1/users/${editing.id}`, patch);
        await load();
        changed();
      }
      dialog.close();
      setStatus(status, changes > 0 ? `Saved ${login}.` : `${login} is unchanged.`, 'ok');
      return '';
    },
  });
  const dialog = h('dialog', { class: 'dialog', 'aria-labelledby': titleId }, dialogTitle, edit.form);
  dialog.addEventListener('close', () => {
    editPassword.input.value = '';
    editing = null;
    opener?.focus();
  });

  /**
   * @param {User} user
   * @param {HTMLElement} from
   */
  const openEditor = (user, from) => {
    editing = user;
    opener = from;
    dialogTitle.textContent = `Edit ${user.login}`;
    editName.input.value = user.display_name;
    editRole.input.value = user.role;
    editDisabled.input.checked = user.disabled;
    editPassword.input.value = '';
    edit.setError('');
    setStatus(edit.status, '');
    clearFieldErrors(edit.form);
    dialog.showModal();
    editName.input.focus();
  };

  /** @param {User} user */
  const remove = async (user) => {
    const self = user.id === ctx.user.id;
    const question = self
      ? `Delete your own account ${user.login}? You are signed out at once.`
      : `Delete ${user.login}? This cannot be undone.`;
    if (!confirm(question)) return;
    setError(error, '');
    try {
      await api('DELETE', `/api/v1/users/${user.id}`);
      if (self) {
        location.assign('/login');
        return;
      }
      setStatus(status, `Deleted ${user.login}.`, 'ok');
      await load();
      changed();
    } catch (err) {
      setError(error, `${user.login} was not deleted: ${errorText(err)}`);
    }
  };

  /** @param {User[]} users */
  const draw = (users) => {
    body.replaceChildren(...users.map((u) => {
      const editButton = button('Edit', () => openEditor(u, editButton), { class: 'secondary small', 'aria-label': `Edit ${u.login}` });
      const deleteButton = button('Delete', () => { remove(u); }, { class: 'danger-text small', 'aria-label': `Delete ${u.login}` });
      return h('tr', { 'data-user': u.login },
        h('td', { class: 'mono' }, u.login, u.id === ctx.user.id ? h('span', { class: 'badge', text: 'you' }) : null),
        h('td', { text: u.display_name }),
        h('td', { text: roleName(u.role) }),
        h('td', {}, u.disabled ? h('span', { class: 'badge badge-fail', text: 'Disabled' }) : h('span', { class: 'badge badge-ok', text: 'Active' })),
        h('td', { class: 'row-actions' }, editButton, deleteButton));
    }));
  };

  const load = async () => {
    try {
      /** @type {{users: User[]}} */
      const answer = await api('GET', '/api/v1/users');
      draw(answer.users ?? []);
    } catch (err) {
      setError(error, `Could not load the users: ${errorText(err)}`);
    }
  };

  // --- add form
  const login = textField({ label: 'Login', field: 'login', placeholder: 'ada@example.org', hint: 'name@domain; the domain must be on the list of domains.' });
  const displayName = textField({ label: 'Display name', field: 'display_name', hint: 'Optional; the name before the @ when empty.' });
  const password = secretField({ label: 'Password', field: 'password', autocomplete: 'new-password', hint: `At least ${MIN_PASSWORD} characters.` });
  const role = selectField({ label: 'Role', field: 'role', options: ROLES });
  const add = actionForm({
    fields: [h('div', { class: 'field-row' }, login.wrap, displayName.wrap), h('div', { class: 'field-row' }, password.wrap, role.wrap)],
    submitText: 'Create user',
    busyText: 'Creating…',
    async submit() {
      if (!login.input.value.includes('@')) throw localError('login', 'Enter a login such as ada@example.org.');
      if (password.input.value.length < MIN_PASSWORD) {
        throw localError('password', `The password needs at least ${MIN_PASSWORD} characters.`);
      }
      /** @type {Record<string, string>} */
      const request = { login: login.input.value.trim(), password: password.input.value, role: role.input.value };
      if (displayName.input.value.trim()) request.display_name = displayName.input.value.trim();
      /** @type {User} */
      const user = await api('POST', '/api/v1/users', request);
      login.input.value = '';
      displayName.input.value = '';
      password.input.value = '';
      role.input.value = 'user';
      await load();
      changed();
      return `Created ${user.login}.`;
    },
  });

  const element = card('Users', 'Everyone who can sign in to this server.',
    error, status,
    table(['Login', 'Display name', 'Role', 'State', 'Actions'], body),
    h('h3', { text: 'Add a user' }),
    add.form,
    dialog);
  element.dataset.card = 'users';
  return { element, load };
}

/**
 * Domains: logins are name@domain, and the domain must exist first.
 * @param {() => void} changed
 */
function domainsCard(changed) {
  const body = h('tbody');
  const status = statusLine();
  const error = errorLine();

  /** @param {Domain} d */
  const remove = async (d) => {
    if (!confirm(`Remove the domain ${d.name}?`)) return;
    setError(error, '');
    try {
      await api('DELETE', `/api/v1/domains/${encodeURIComponent(d.name)}`);
      setStatus(status, `Removed ${d.name}.`, 'ok');
      await load();
      changed();
    } catch (err) {
      setError(error, `${d.name} was not removed: ${errorText(err)}`);
    }
  };

  const load = async () => {
    try {
      /** @type {{domains: Domain[]}} */
      const answer = await api('GET', '/api/v1/domains');
      const domains = answer.domains ?? [];
      body.replaceChildren(...domains.map((d) => h('tr', { 'data-domain': d.name },
        h('td', { class: 'mono', text: d.name }),
        h('td', { class: 'num', text: String(d.users) }),
        h('td', { class: 'row-actions' }, button('Remove', () => { remove(d); }, {
          class: 'danger-text small',
          'aria-label': `Remove ${d.name}`,
          disabled: d.users > 0,
          title: d.users > 0 ? 'Delete or move its users first' : undefined,
        })))));
      if (domains.length === 0) body.append(h('tr', {}, h('td', { colspan: 3, class: 'hint', text: 'No domain yet.' })));
    } catch (err) {
      setError(error, `Could not load the domains: ${errorText(err)}`);
    }
  };

  const name = textField({ label: 'Domain', field: 'name', placeholder: 'example.org' });
  const add = actionForm({
    fields: [name.wrap],
    submitText: 'Add domain',
    busyText: 'Adding…',
    className: 'action-form inline-form',
    async submit() {
      /** @type {Domain} */
      const d = await api('POST', '/api/v1/domains', { name: name.input.value.trim() });
      name.input.value = '';
      await load();
      return `Added ${d.name}.`;
    },
  });

  const element = card('Domains', 'Logins are name@domain. A domain can be removed once it has no users.',
    error, status, table(['Domain', 'Users', 'Actions'], body), add.form);
  element.dataset.card = 'domains';
  return { element, load };
}

/**
 * The signed-in administrator's personal access tokens.
 */
function tokensCard() {
  const body = h('tbody');
  const status = statusLine();
  const error = errorLine();

  // Shown once, right after a token is created.
  const secret = h('input', { type: 'text', readonly: true, class: 'mono', 'aria-label': 'The new token', spellcheck: 'false' });
  const copyStatus = statusLine('hint');
  const copy = button('Copy', async () => {
    try {
      await navigator.clipboard.writeText(secret.value);
      copyStatus.textContent = 'Copied.';
    } catch {
      secret.focus();
      secret.select();
      copyStatus.textContent = 'Selected: copy it with the keyboard.';
    }
  }, { class: 'secondary small', 'data-action': 'copy' });
  const done = button('Done', () => {
    secret.value = '';
    reveal.hidden = true;
  }, { class: 'secondary small' });
  const reveal = h('div', { class: 'token-reveal notice', hidden: true, 'data-card': 'token-secret' },
    h('p', { text: 'Copy this token now: it is not shown again. Programs send it as “Authorization: Bearer <token>”.' }),
    h('div', { class: 'input-with-button' }, secret, copy, done),
    copyStatus);

  /** @param {Token} t */
  const revoke = async (t) => {
    if (!confirm(`Revoke the token “${t.name}”? Programs using it lose access at once.`)) return;
    setError(error, '');
    try {
      await api('DELETE', `/api/v1/tokens/${t.id}`);
      setStatus(status, `Revoked “${t.name}”.`, 'ok');
      await load();
    } catch (err) {
      setError(error, `“${t.name}” was not revoked: ${errorText(err)}`);
    }
  };

  const load = async () => {
    try {
      /** @type {{tokens: Token[]}} */
      const answer = await api('GET', '/api/v1/tokens');
      const tokens = answer.tokens ?? [];
      body.replaceChildren(...tokens.map((t) => h('tr', { 'data-token': t.name },
        h('td', { text: t.name }),
        h('td', { text: formatTime(t.created_at) }),
        h('td', { text: t.last_used_at ? formatTime(t.last_used_at) : 'Never' }),
        h('td', { class: 'row-actions' }, button('Revoke', () => { revoke(t); }, {
          class: 'danger-text small', 'aria-label': `Revoke ${t.name}`,
        })))));
      if (tokens.length === 0) body.append(h('tr', {}, h('td', { colspan: 4, class: 'hint', text: 'No tokens.' })));
    } catch (err) {
      setError(error, `Could not load the tokens: ${errorText(err)}`);
    }
  };

  const name = textField({ label: 'Name', field: 'name', placeholder: 'backup script', hint: 'What the token is for, to recognise it later.' });
  const add = actionForm({
    fields: [name.wrap],
    submitText: 'Create token',
    busyText: 'Creating…',
    className: 'action-form inline-form',
    async submit() {
      /** @type {Token & {token: string}} */
      const created = await api('POST', '/api/v1/tokens', { name: name.input.value.trim() });
      name.input.value = '';
      secret.value = created.token;
      copyStatus.textContent = '';
      reveal.hidden = false;
      copy.focus();
      await load();
      return `Created “${created.name}”.`;
    },
  });

  const element = card('Your personal access tokens',
    'Tokens let programs use the API as you, without your password. Revoke a token you no longer need.',
    error, status, table(['Name', 'Created', 'Last used', 'Actions'], body), add.form, reveal);
  element.dataset.card = 'tokens';
  return { element, load };
}

/** The signed-in administrator's own password. */
function passwordCard() {
  const current = secretField({ label: 'Current password', field: 'current', autocomplete: 'current-password' });
  const next = secretField({ label: 'New password', field: 'new', autocomplete: 'new-password', hint: `At least ${MIN_PASSWORD} characters.` });
  const repeat = secretField({ label: 'Repeat the new password', field: 'repeat', autocomplete: 'new-password' });
  const form = actionForm({
    fields: [current.wrap, h('div', { class: 'field-row' }, next.wrap, repeat.wrap)],
    submitText: 'Change password',
    busyText: 'Changing…',
    async submit() {
      if (next.input.value.length < MIN_PASSWORD) {
        throw localError('new', `The password needs at least ${MIN_PASSWORD} characters.`);
      }
      if (repeat.input.value !== next.input.value) throw localError('repeat', 'The two passwords differ.');
      await api('PUT', '/api/v1/session/password', { current: current.input.value, new: next.input.value });
      for (const f of [current, next, repeat]) f.input.value = '';
      return 'Password changed.';
    },
  });
  const element = card('Your password', null, form.form);
  element.dataset.card = 'password';
  return element;
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function usersPage(ctx) {
  /** @type {() => void} */
  let reloadDomains = () => {};
  /** @type {() => void} */
  let reloadUsers = () => {};
  const users = usersCard(ctx, () => reloadDomains());
  const domains = domainsCard(() => reloadUsers());
  const tokens = tokensCard();
  reloadDomains = () => { domains.load(); };
  reloadUsers = () => { users.load(); };
  const p = page('users', 'Users & domains', 'Accounts, the domains they belong to, and your own tokens and password.',
    users.element, domains.element, tokens.element, passwordCard());
  p.shown = () => {
    users.load();
    domains.load();
    tokens.load();
  };
  return p;
}
