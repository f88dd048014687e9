// @ts-check
/**
 * The home page: start a new room, or go to a named one.
 *
 * @module
 */

import { newRoomName, normalizeRoomName, roomNameFromInput, roomNameProblem } from './room-name.js';
import { byId } from './ui/dom.js';

const form = /** @type {HTMLFormElement} */ (byId('room-form'));
const input = /** @type {HTMLInputElement} */ (byId('room-name'));
const error = byId('room-error');

/** @param {string} room a valid, normalized room name */
function goToRoom(room) {
  location.assign(`/r/${encodeURIComponent(room)}`);
}

/** @param {string} message '' hides the message */
function showError(message) {
  error.textContent = message;
  error.hidden = message === '';
  input.setAttribute('aria-invalid', String(message !== ''));
}

byId('new-room').addEventListener('click', () => goToRoom(newRoomName()));

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = roomNameFromInput(input.value);
  const problem = roomNameProblem(name);
  if (problem) {
    showError(problem);
    input.focus();
    return;
  }
  goToRoom(normalizeRoomName(name));
});

input.addEventListener('input', () => {
  if (!error.hidden) showError('');
});
