// @ts-check
/**
 * The Reactions page: the emojis participants may send, in the order the
 * meeting page shows them.
 *
 * @module
 */

import { page } from './context.js';
import { h } from './dom.js';
import { listEditor, sectionCard, stringRow } from './forms.js';

/** The most reactions. */
const MAX_REACTIONS = 32;

/** Offered for a quick add. */
const SUGGESTIONS = ['👍', '👏', '😂', '❤️', '🎉', '😮', '🚀', '🙏', '🔥', '💯', '🤔', '👀', '😢', '🙌', '✅', '👋'];

/**
 * @typedef {object} ReactionSettings
 * @property {string[]} allowed
 */

/** @returns {import('./forms.js').SectionForm<ReactionSettings>} */
function reactionsForm() {
  const list = listEditor({
    field: 'allowed',
    label: 'Allowed reactions',
    itemName: 'reaction',
    max: MAX_REACTIONS,
    reorder: true,
    blank: () => '',
    row: stringRow({ itemName: 'Reaction' }),
    hint: 'One emoji each, in the order participants see them. An empty list turns reactions off.',
    emptyText: 'No reactions: participants cannot react.',
  });
  list.element.classList.add('emoji-list');

  const preview = h('p', { class: 'emoji-preview', 'aria-live': 'polite' });
  const drawPreview = () => {
    const emojis = list.read().filter(Boolean);
    preview.textContent = emojis.length ? emojis.join(' ') : 'Reactions are off.';
  };
  list.element.addEventListener('input', drawPreview);

  const palette = h('div', { class: 'emoji-palette', role: 'group', 'aria-label': 'Add a common reaction' });
  for (const emoji of SUGGESTIONS) {
    const b = h('button', { type: 'button', class: 'emoji-button', text: emoji, 'aria-label': `Add ${emoji}`, 'data-emoji': emoji });
    b.addEventListener('click', () => {
      const current = list.read();
      if (current.includes(emoji)) return;
      // Fill an empty row first, else add one.
      const blank = current.indexOf('');
      if (blank >= 0) {
        current[blank] = emoji;
        list.set(current);
        list.element.dispatchEvent(new Event('input', { bubbles: true }));
      } else {
        list.add(emoji);
      }
      b.focus();
    });
    palette.append(b);
  }

  return {
    fields: [
      list.element,
      h('div', { class: 'field' }, h('span', { class: 'list-label', text: 'Quick add' }), palette),
      h('div', { class: 'field' }, h('span', { class: 'list-label', text: 'As participants see them' }), preview),
    ],
    render(v) {
      list.set(v.allowed ?? []);
      drawPreview();
    },
    read: () => ({ allowed: list.read() }),
  };
}

/**
 * @param {import('./context.js').ConsoleContext} ctx
 * @returns {import('./context.js').Page}
 */
export function reactionsPage(ctx) {
  const reactions = sectionCard({
    key: 'reactions',
    title: 'Reactions',
    form: reactionsForm(),
    value: ctx.settings.reactions,
  });
  ctx.cards.set(reactions.key, reactions);
  return page('reactions', 'Reactions',
    'The emojis participants can send during a meeting; anything else is refused. People already in a meeting get the new list when they next join.',
    reactions.element);
}
