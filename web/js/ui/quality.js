// @ts-check
/**
 * Connection quality per participant, from WebRTC statistics, shown as a
 * dot on each tile (`data-quality` = `good`, `fair` or `poor`, with the
 * figures in its title).
 *
 * Others' quality is what reaches us from them (loss and jitter of their
 * tracks on our subscribe connection); our own is what the server reports
 * back about our publish connection (loss and round-trip time from RTCP).
 *
 * @module
 */

/** How often statistics are read. */
const INTERVAL_MS = 2000;

/**
 * @typedef {object} Quality
 * @property {'good' | 'fair' | 'poor'} level
 * @property {string} detail  figures for people, e.g. "loss 0.5%, jitter 12 ms"
 */

/**
 * @param {number} lossPercent
 * @param {number} delayMs jitter or round-trip time
 * @returns {'good' | 'fair' | 'poor'}
 */
export function rate(lossPercent, delayMs) {
  if (lossPercent >= 8 || delayMs >= 400) return 'poor';
  if (lossPercent >= 2 || delayMs >= 150) return 'fair';
  return 'good';
}

export class QualityMonitor {
  /** Previous counters per participant: received and lost packets. @type {Map<string, {received: number, lost: number}>} */
  #last = new Map();
  #timer = 0;
  #session;
  #selfId;
  #onQuality;

  /**
   * @param {import('../session.js').MediaSession} session
   * @param {string} selfId
   * @param {(id: string, quality: Quality) => void} onQuality
   */
  constructor(session, selfId, onQuality) {
    this.#session = session;
    this.#selfId = selfId;
    this.#onQuality = onQuality;
    this.#timer = window.setInterval(() => {
      this.#sample().catch(() => {});
    }, INTERVAL_MS);
  }

  stop() {
    clearInterval(this.#timer);
  }

  async #sample() {
    /** @type {Map<string, {received: number, lost: number, jitter: number}>} */
    const totals = new Map();
    const sub = this.#session.subscribePc;
    for (const receiver of sub?.getReceivers() ?? []) {
      const owner = receiver.track.id.split('-')[0];
      if (!owner.startsWith('p')) continue;
      const stats = await receiver.getStats();
      stats.forEach((s) => {
        if (s.type !== 'inbound-rtp') return;
        const t = totals.get(owner) ?? { received: 0, lost: 0, jitter: 0 };
        t.received += s.packetsReceived ?? 0;
        t.lost += Math.max(0, s.packetsLost ?? 0);
        t.jitter = Math.max(t.jitter, (s.jitter ?? 0) * 1000);
        totals.set(owner, t);
      });
    }
    for (const [id, t] of totals) {
      const prev = this.#last.get(id) ?? { received: 0, lost: 0 };
      this.#last.set(id, { received: t.received, lost: t.lost });
      const received = t.received - prev.received;
      const lost = t.lost - prev.lost;
      if (received + lost <= 0) continue;
      const loss = (100 * lost) / (received + lost);
      this.#onQuality(id, {
        level: rate(loss, t.jitter),
        detail: `receiving: loss ${loss.toFixed(1)}%, jitter ${Math.round(t.jitter)} ms`,
      });
    }
    const pub = this.#session.publishPc;
    if (!pub) return;
    let fraction = 0;
    let rtt = 0;
    let seen = false;
    (await pub.getStats()).forEach((s) => {
      if (s.type !== 'remote-inbound-rtp') return;
      seen = true;
      fraction = Math.max(fraction, s.fractionLost ?? 0);
      rtt = Math.max(rtt, (s.roundTripTime ?? 0) * 1000);
    });
    if (seen) {
      const loss = fraction * 100;
      this.#onQuality(this.#selfId, {
        level: rate(loss, rtt),
        detail: `sending: loss ${loss.toFixed(1)}%, round trip ${Math.round(rtt)} ms`,
      });
    }
  }
}
