// @ts-check
/**
 * Call sounds made with Web Audio, so no audio files are needed: the
 * ringtone (callee), the ringback (caller, while it rings) and the hang-up
 * beeps. Browsers may keep an AudioContext suspended until the page was
 * clicked; the sounds then stay silent, and the dialogs still show.
 *
 * @module
 */

/** @type {AudioContext | null} */
let context = null;

function audio() {
  if (!context) context = new AudioContext();
  if (context.state === 'suspended') context.resume().catch(() => {});
  return context;
}

/**
 * Plays `frequencies` together from `start` for `length` seconds.
 * @param {AudioContext} ctx
 * @param {number[]} frequencies
 * @param {number} start
 * @param {number} length
 * @param {number} [volume]
 */
function beep(ctx, frequencies, start, length, volume = 0.08) {
  const gain = ctx.createGain();
  gain.gain.setValueAtTime(0, start);
  gain.gain.linearRampToValueAtTime(volume, start + 0.02);
  gain.gain.setValueAtTime(volume, start + length - 0.03);
  gain.gain.linearRampToValueAtTime(0, start + length);
  gain.connect(ctx.destination);
  for (const f of frequencies) {
    const osc = ctx.createOscillator();
    osc.frequency.value = f;
    osc.connect(gain);
    osc.start(start);
    osc.stop(start + length);
  }
}

/**
 * Repeats a pattern until stopped. Returns the stop function.
 * @param {(ctx: AudioContext, at: number) => void} pattern
 * @param {number} period seconds
 */
function repeat(pattern, period) {
  let ctx;
  try {
    ctx = audio();
  } catch {
    return () => {};
  }
  const play = () => pattern(ctx, ctx.currentTime + 0.05);
  play();
  const timer = setInterval(play, period * 1000);
  return () => clearInterval(timer);
}

/** The callee's ringtone: two short rings every 3 s. Returns a stop function. */
export function ringtone() {
  return repeat((ctx, at) => {
    beep(ctx, [880, 1100], at, 0.4);
    beep(ctx, [880, 1100], at + 0.6, 0.4);
  }, 3);
}

/** The caller's ringback: 440 + 480 Hz, 2 s on, 4 s off. Returns a stop function. */
export function ringback() {
  return repeat((ctx, at) => beep(ctx, [440, 480], at, 2, 0.05), 6);
}

/** Three falling beeps when a call ends. */
export function hangUpSound() {
  try {
    const ctx = audio();
    const at = ctx.currentTime + 0.05;
    [620, 520, 420].forEach((f, i) => beep(ctx, [f], at + i * 0.22, 0.18));
  } catch {
    // no audio: the message on screen says it
  }
}
