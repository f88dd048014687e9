// @ts-check
/**
 * Non-blocking notices in a corner of the screen: server errors, devices
 * that stopped, failed media connections. Each disappears on its own unless
 * it offers an action, and can be dismissed.
 *
 * @module
 */

/**
 * @typedef {object} ToastOptions
 * @property {'info' | 'error'} [kind]   default 'error'
 * @property {number} [timeoutMs]        0 keeps it until dismissed; default 6 s, or 0 with an action
 * @property {{label: string, run: () => void}} [action] a button in the toast
 */

/** The same text is not stacked twice; repeats refresh the existing toast. */
/** @type {Map<string, () => void>} */
const open = new Map();

/**
 * @param {string} message plain text, shown with textContent
 * @param {ToastOptions} [options]
 */
export function showToast(message, options = {}) {
  const container = document.getElementById('toasts');
  if (!container) return;
  open.get(message)?.();

  const toast = document.createElement('div');
  toast.className = `toast toast-${options.kind ?? 'error'}`;
  toast.setAttribute('role', options.kind === 'info' ? 'status' : 'alert');

  const text = document.createElement('span');
  text.className = 'toast-text';
  text.textContent = message;
  toast.append(text);

  const dismiss = () => {
    clearTimeout(timer);
    toast.remove();
    if (open.get(message) === dismiss) open.delete(message);
  };

  if (options.action) {
    const { label, run } = options.action;
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'toast-action';
    button.textContent = label;
    button.addEventListener('click', () => {
      dismiss();
      run();
    });
    toast.append(button);
  }

  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'toast-close';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', dismiss);
  toast.append(close);

  container.append(toast);
  open.set(message, dismiss);
  const timeout = options.timeoutMs ?? (options.action ? 0 : 6000);
  const timer = timeout > 0 ? setTimeout(dismiss, timeout) : undefined;
}

/** Removes every toast, e.g. when the call ends. */
export function clearToasts() {
  for (const dismiss of [...open.values()]) dismiss();
}
