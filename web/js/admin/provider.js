// @ts-check
/**
 * The TURN provider page: where TURN credentials come from (nowhere,
 * Parley's own TURN server, a hosted service, or any HTTP endpoint described
 * by hand), the provider's state, and the connectivity check.
 *
 * @module
 */

import { api } from '../api.js';
import { page } from './context.js';
import { button, card, h } from './dom.js';
import {
  listEditor, numberField, numberValue, sectionCard, secretField, selectField, setNumber, textareaField, textField,
} from './forms.js';
import { checkCard, providerStatusView } from './ice-view.js';

/** @typedef {'none' | 'builtin' | 'metered' | 'twilio' | 'xirsys' | 'custom'} ProviderKind */
/** @typedef {'none' | 'basic' | 'bearer' | 'header'} AuthType */

/**
 * The section as the API has it: `kind` and that kind's fields.
 * @typedef {{kind: ProviderKind} & Record<string, any>} TurnProvider
 */

/** Most extra headers and variables of a custom provider. */
const MAX_ROWS = 16;

/** @type {Array<[ProviderKind, string]>} */
const KINDS = [
  ['none', 'None: only the TURN servers on the Connection & ICE page'],
  ['builtin', 'Built-in: Parley’s own TURN server'],
  ['metered', 'Metered'],
  ['twilio', 'Twilio'],
  ['xirsys', 'Xirsys'],
  ['custom', 'Custom: any service that returns servers over HTTP'],
];

/**
 * A list of name/value pairs.
 * @param {{field: string, label: string, itemName: string, hint: string, namePlaceholder: string, valuePlaceholder: string, emptyText: string}} o
 */
function pairList(o) {
  return listEditor({
    field: o.field,
    label: o.label,
    itemName: o.itemName,
    max: MAX_ROWS,
    hint: o.hint,
    emptyText: o.emptyText,
    blank: () => ({ name: '', value: '' }),
    row: (/** @type {{name: string, value: string}} */ v, path, index) => {
      const name = textField({ label: 'Name', field: `${path}.name`, value: v.name, placeholder: o.namePlaceholder });
      const value = textField({ label: 'Value', field: `${path}.value`, value: v.value, placeholder: o.valuePlaceholder });
      name.input.setAttribute('aria-label', `${o.itemName} ${index + 1} name`);
      value.input.setAttribute('aria-label', `${o.itemName} ${index + 1} value`);
      return {
        element: h('div', { class: 'field-row' }, name.wrap, value.wrap),
        read: () => ({ name: name.input.value.trim(), value: value.input.value }),
      };
    },
  });
}

/** @returns {import('./forms.js').SectionForm<TurnProvider>} */
function providerForm() {
  const kind = selectField({ label: 'Provider', field: 'kind', options: KINDS });

  // Metered
  const meteredApp = textField({ label: 'App name', field: 'app', placeholder: 'yourapp', hint: 'Your app’s subdomain on metered.live.' });
  const meteredKey = secretField({ label: 'API key', field: 'api_key' });
  // Twilio
  const twilioSid = textField({ label: 'Account SID', field: 'account_sid', placeholder: 'AC…' });
  const twilioToken = secretField({ label: 'Auth token', field: 'auth_token' });
  // Xirsys
  const xirsysIdent = textField({ label: 'Ident', field: 'ident', hint: 'Your Xirsys account name.' });
  const xirsysSecret = secretField({ label: 'Secret', field: 'secret' });
  const xirsysChannel = textField({ label: 'Channel', field: 'channel' });
  // Custom
  const url = textField({
    label: 'URL', field: 'url_template', type: 'url', placeholder: 'https://global.xirsys.net/_turn/${CHANNEL}',
    hint: 'https:// (or http://). ${NAME} is replaced by the variable NAME.',
  });
  const variables = pairList({
    field: 'variables', label: 'Variables', itemName: 'variable', namePlaceholder: 'CHANNEL', valuePlaceholder: 'meetings',
    hint: 'Values for the ${NAME} placeholders of the URL.', emptyText: 'No variables.',
  });
  const method = selectField({ label: 'Method', field: 'method', options: [['GET', 'GET'], ['POST', 'POST'], ['PUT', 'PUT'], ['PATCH', 'PATCH']] });
  const headers = pairList({
    field: 'headers', label: 'Extra headers', itemName: 'header', namePlaceholder: 'Content-Type', valuePlaceholder: 'application/json',
    hint: 'Sent with the request.', emptyText: 'No extra headers.',
  });
  const authType = selectField({
    label: 'Authentication', field: 'auth.type',
    options: [['none', 'None (or in the URL or headers)'], ['basic', 'HTTP Basic'], ['bearer', 'Bearer token'], ['header', 'A header of the provider’s choosing']],
  });
  const authUser = textField({ label: 'Username', field: 'auth.username' });
  const authPassword = secretField({ label: 'Password', field: 'auth.password' });
  const authToken = secretField({ label: 'Token', field: 'auth.token' });
  const authName = textField({ label: 'Header name', field: 'auth.name', placeholder: 'X-Api-Key' });
  const authValue = secretField({ label: 'Header value', field: 'auth.value' });
  const body = textareaField({
    label: 'Request body', field: 'body', rows: 3, placeholder: '{"format": "urls"}',
    hint: 'JSON, for POST, PUT and PATCH. Empty: no body.',
  });
  const urlsPath = textField({ label: 'Where the URLs are', field: 'urls_path', placeholder: 'v.iceServers.urls', hint: 'A path into the JSON answer, e.g. v.iceServers.urls or data.iceServers[].urls.' });
  const usernamePath = textField({ label: 'Where the username is', field: 'username_path', placeholder: 'v.iceServers.username' });
  const credentialPath = textField({ label: 'Where the password is', field: 'credential_path', placeholder: 'v.iceServers.credential' });
  const cache = numberField({ label: 'Reuse an answer for (seconds)', field: 'cache_seconds', min: 30, max: 86400, hint: '30 to 86400.' });

  const authGroups = {
    none: h('div', {}),
    basic: h('div', { class: 'field-row' }, authUser.wrap, authPassword.wrap),
    bearer: h('div', {}, authToken.wrap),
    header: h('div', { class: 'field-row' }, authName.wrap, authValue.wrap),
  };

  /** @type {Record<ProviderKind, HTMLElement>} */
  const groups = {
    none: h('p', { class: 'hint kind-hint', text: 'Participants get only the STUN and TURN servers listed on the Connection & ICE page.' }),
    builtin: h('p', { class: 'hint kind-hint', text: 'Parley’s own TURN server, with credentials minted for each participant. Nothing leaves your server.' }),
    metered: h('div', { class: 'kind-fields' },
      h('p', { class: 'hint', text: 'Credentials from metered.ca, fetched from https://APP.metered.live/api/v1/turn/credentials.' }),
      h('div', { class: 'field-row' }, meteredApp.wrap, meteredKey.wrap)),
    twilio: h('div', { class: 'kind-fields' },
      h('p', { class: 'hint', text: 'Credentials from the Twilio Network Traversal Service.' }),
      h('div', { class: 'field-row' }, twilioSid.wrap, twilioToken.wrap)),
    xirsys: h('div', { class: 'kind-fields' },
      h('p', { class: 'hint', text: 'Credentials from Xirsys.' }),
      h('div', { class: 'field-row' }, xirsysIdent.wrap, xirsysSecret.wrap),
      xirsysChannel.wrap),
    custom: h('div', { class: 'kind-fields' },
      h('fieldset', { class: 'subsection' }, h('legend', { text: 'Request' }),
        url.wrap, variables.element, method.wrap, headers.element, authType.wrap,
        authGroups.none, authGroups.basic, authGroups.bearer, authGroups.header, body.wrap),
      h('fieldset', { class: 'subsection' }, h('legend', { text: 'Answer' }),
        urlsPath.wrap, usernamePath.wrap, credentialPath.wrap, cache.wrap)),
  };

  /** @returns {ProviderKind} */
  const currentKind = () => {
    const k = kind.input.value;
    return KINDS.some(([v]) => v === k) ? /** @type {ProviderKind} */ (k) : 'builtin';
  };
  /** @returns {AuthType} */
  const currentAuth = () => {
    const t = authType.input.value;
    return t === 'basic' || t === 'bearer' || t === 'header' ? t : 'none';
  };
  const sync = () => {
    const k = currentKind();
    for (const [name, el] of Object.entries(groups)) el.hidden = name !== k;
    const a = currentAuth();
    for (const [name, el] of Object.entries(authGroups)) el.hidden = name !== a;
    body.wrap.hidden = method.input.value === 'GET';
  };
  kind.input.addEventListener('change', sync);
  authType.input.addEventListener('change', sync);
  method.input.addEventListener('change', sync);

  /** @param {TurnProvider} v */
  const render = (v) => {
    kind.input.value = v.kind;
    switch (v.kind) {
      case 'metered':
        meteredApp.input.value = v.app ?? '';
        meteredKey.input.value = v.api_key ?? '';
        break;
      case 'twilio':
        twilioSid.input.value = v.account_sid ?? '';
        twilioToken.input.value = v.auth_token ?? '';
        break;
      case 'xirsys':
        xirsysIdent.input.value = v.ident ?? '';
        xirsysSecret.input.value = v.secret ?? '';
        xirsysChannel.input.value = v.channel ?? '';
        break;
      case 'custom': {
        url.input.value = v.url_template ?? '';
        variables.set(Object.entries(v.variables ?? {}).map(([name, value]) => ({ name, value: String(value) })));
        method.input.value = v.method ?? 'GET';
        headers.set(Array.isArray(v.headers) ? v.headers : []);
        const auth = v.auth ?? { type: 'none' };
        authType.input.value = auth.type ?? 'none';
        authUser.input.value = auth.username ?? '';
        authPassword.input.value = auth.password ?? '';
        authToken.input.value = auth.token ?? '';
        authName.input.value = auth.name ?? '';
        authValue.input.value = auth.value ?? '';
        body.input.value = v.body ?? '';
        urlsPath.input.value = v.urls_path ?? '';
        usernamePath.input.value = v.username_path ?? '';
        credentialPath.input.value = v.credential_path ?? '';
        setNumber(cache.input, v.cache_seconds ?? 300);
        break;
      }
      default:
        break;
    }
    if (cache.input.value === '') setNumber(cache.input, 300);
    sync();
  };

  /** @returns {TurnProvider} */
  const read = () => {
    const k = currentKind();
    switch (k) {
      case 'metered':
        return { kind: k, app: meteredApp.input.value.trim(), api_key: meteredKey.input.value };
      case 'twilio':
        return { kind: k, account_sid: twilioSid.input.value.trim(), auth_token: twilioToken.input.value };
      case 'xirsys':
        return { kind: k, ident: xirsysIdent.input.value.trim(), secret: xirsysSecret.input.value, channel: xirsysChannel.input.value.trim() };
      case 'custom': {
        /** @type {Record<string, string>} */
        const vars = {};
        for (const { name, value } of variables.read()) vars[name] = value;
        const a = currentAuth();
        /** @type {Record<string, string>} */
        let auth = { type: 'none' };
        if (a === 'basic') auth = { type: a, username: authUser.input.value, password: authPassword.input.value };
        if (a === 'bearer') auth = { type: a, token: authToken.input.value };
        if (a === 'header') auth = { type: a, name: authName.input.value.trim(), value: authValue.input.value };
        /** @type {TurnProvider} */
        const out = {
          kind: k,
          url_template: url.input.value.trim(),
          variables: vars,
          method: method.input.value,
          headers: headers.read(),
          auth,
          urls_path: urlsPath.input.value.trim(),
          username_path: usernamePath.input.value.trim(),
          credential_path: credentialPath.input.value.trim(),
          cache_seconds: numberValue(cache.input),
        };
        if (method.input.value !== 'GET' && body.input.value.trim() !== '') out.body = body.input.value;
        return out;
      }
      default:
        return { kind: k };
    }
  };

  return { fields: [kind.wrap, ...Object.values(groups)], render, read };
}

/**
 * The provider's state, from GET /api/v1/ice/servers.
 * @param {import('./context.js').ConsoleContext} ctx
 */
function providerStateCard(ctx) {
  const body = h('div', { 'aria-live': 'polite' }, h('p', { class: 'hint', text: 'Loading…' }));
  let loaded = false;
  const refresh = async () => {
    loaded = true;
    refreshButton.disabled = true;
    try {
      const answer = await api('GET', '/api/v1/ice/servers');
      body.replaceChildren(providerStatusView(answer.provider));
    } catch {
      body.replaceChildren(h('p', { class: 'form-error', text: 'Could not load the provider’s state.' }));
    } finally {
      refreshButton.disabled = false;
    }
  };
  const refreshButton = button('Refresh', () => { refresh(); }, { class: 'secondary small' });
  ctx.onIceChange(() => { if (loaded) refresh(); });
  const element = card('Provider state', 'The provider’s last answer, as participants get it.',
    h('div', { class: 'card-tools' }, refreshButton), body);
  return { element, refresh: () => { if (!loaded) refresh(); } };
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function providerPage(ctx) {
  const provider = sectionCard({
    key: 'turn_provider',
    title: 'TURN provider',
    intro: 'Where the TURN servers and credentials participants get come from, besides the TURN servers listed on the Connection & ICE page.',
    form: providerForm(),
    value: ctx.settings.turn_provider,
    onSaved: ctx.iceChanged,
  });
  ctx.cards.set(provider.key, provider);
  const state = providerStateCard(ctx);
  const p = page('provider', 'TURN provider',
    'Choose where TURN credentials come from, and test that participants can reach every STUN and TURN server.',
    provider.element, state.element, checkCard(ctx));
  p.shown = state.refresh;
  return p;
}
