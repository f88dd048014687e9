// @ts-check
/**
 * The Mail page: the SMTP server invitations to scheduled conferences go
 * through, and the public address links in them point to.
 *
 * @module
 */

import { page } from './context.js';
import { checkField, numberField, numberValue, sectionCard, secretField, selectField, setNumber, textField } from './forms.js';

/**
 * @typedef {object} MailSettings
 * @property {boolean} enabled
 * @property {string} host
 * @property {number} port
 * @property {'starttls' | 'tls' | 'none'} security
 * @property {string} username
 * @property {string} password
 * @property {string} from
 * @property {string} public_url
 */

/** @returns {import('./forms.js').SectionForm<MailSettings>} */
function mailForm() {
  const enabled = checkField({
    label: 'Send invitations by e-mail',
    field: 'enabled',
    hint: 'Off: invitees with an account still see invitations in Parley; nobody gets e-mail.',
  });
  const host = textField({ label: 'SMTP server', field: 'host', placeholder: 'smtp.example.org' });
  const port = numberField({ label: 'Port', field: 'port', min: 1, max: 65535, hint: '587 for STARTTLS, 465 for TLS.' });
  const security = selectField({
    label: 'Security',
    field: 'security',
    options: [
      ['starttls', 'STARTTLS (refused if the server does not offer it)'],
      ['tls', 'TLS from the start'],
      ['none', 'None: only for a relay on this machine or network'],
    ],
  });
  const username = textField({ label: 'User name', field: 'username', hint: 'Empty sends without signing in.' });
  const password = secretField({ label: 'Password', field: 'password' });
  const from = textField({ label: 'Sender', field: 'from', placeholder: 'Parley <meet@example.org>' });
  const publicUrl = textField({
    label: 'Public address',
    field: 'public_url',
    placeholder: 'https://meet.example.org',
    hint: 'Where links in invitations point. Empty: the address the organizer used.',
  });
  return {
    fields: [enabled.wrap, host.wrap, port.wrap, security.wrap, username.wrap, password.wrap, from.wrap, publicUrl.wrap],
    render(v) {
      enabled.input.checked = v.enabled === true;
      host.input.value = v.host ?? '';
      setNumber(port.input, v.port);
      security.input.value = v.security ?? 'starttls';
      username.input.value = v.username ?? '';
      password.input.value = v.password ?? '';
      from.input.value = v.from ?? '';
      publicUrl.input.value = v.public_url ?? '';
    },
    read: () => ({
      enabled: enabled.input.checked,
      host: host.input.value.trim(),
      port: /** @type {number} */ (numberValue(port.input)),
      security: /** @type {MailSettings['security']} */ (security.input.value),
      username: username.input.value.trim(),
      password: password.input.value,
      from: from.input.value.trim(),
      public_url: publicUrl.input.value.trim(),
    }),
  };
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function mailPage(ctx) {
  const mail = sectionCard({ key: 'mail', title: 'Mail', form: mailForm(), value: ctx.settings.mail });
  ctx.cards.set(mail.key, mail);
  return page('mail', 'Mail', 'How invitations to scheduled conferences reach people.', mail.element);
}
