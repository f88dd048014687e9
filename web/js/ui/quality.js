// @ts-check
/**
 * Connection quality per participant, from WebRTC statistics, shown as a
 * dot on each tile (`data-quality` = `good`, `fair` or `poor`, with the
 * figures in its title).
 *
 * Others' quality is what reaches us from them (loss and jitter of their
 * tracks on our subscribe connection); our own is what the server reports
 * back about our publish connection (loss and round-trip time from RTCP),
 * with the path our media takes (UDP, ICE-TCP or TURN over UDP, TCP or TLS)
 * from the selected candidate pair. Our own figures are also handed to
 * `onReport`, for the server (moderators and the administrator see them).
 *
 * @module
 */

/** @typedef {'udp' | 'tcp' | 'turn_udp' | 'turn_tcp' | 'turn_tls'} MediaPath */

/**
 * How our media reaches the server.
 * @typedef {object} PathReport
 * @property {MediaPath} path
 * @property {number} rtt_ms
 * @property {number} loss_permille
 */

/** @type {Record<MediaPath, string>} */
export const PATH_NAMES = {
  udp: 'UDP',
  tcp: 'ICE-TCP',
  turn_udp: 'TURN over UDP',
  turn_tcp: 'TURN over TCP',
  turn_tls: 'TURN over TLS',
};

/**
 * A path report in words: "via ICE-TCP, round trip 12 ms, loss 0.5%".
 * @param {{path: string, rtt_ms: number, loss_permille: number}} report
 */
export function describePath(report) {
  const name = PATH_NAMES[/** @type {MediaPath} */ (report.path)] ?? report.path;
  return `via ${name}, round trip ${report.rtt_ms} ms, loss ${(report.loss_permille / 10).toFixed(1)}%`;
}

/**
 * The path of a connection's selected candidate pair, from its stats.
 * @param {RTCStatsReport} stats
 * @returns {{path: MediaPath, rtt: number} | null}
 */
export function selectedPath(stats) {
  /** @type {any} */
  let pair = null;
  stats.forEach((s) => {
    if (s.type === 'transport' && s.selectedCandidatePairId) pair = stats.get(s.selectedCandidatePairId);
  });
  if (!pair) return null;
  const local = stats.get(pair.localCandidateId);
  if (!local) return null;
  /** @type {MediaPath} */
  let path = local.protocol === 'tcp' ? 'tcp' : 'udp';
  if (local.candidateType === 'relay') {
    const via = local.relayProtocol;
    path = via === 'tls' ? 'turn_tls' : via === 'tcp' ? 'turn_tcp' : 'turn_udp';
  }
  return { path, rtt: (pair.currentRoundTripTime ?? 0) * 1000 };
}

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
  #onReport;

  /**
   * @param {import('../session.js').MediaSession} session
   * @param {string} selfId
   * @param {(id: string, quality: Quality) => void} onQuality
   * @param {(report: PathReport) => void} [onReport]
   */
  constructor(session, selfId, onQuality, onReport = () => {}) {
    this.#session = session;
    this.#selfId = selfId;
    this.#onQuality = onQuality;
    this.#onReport = onReport;
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
    const stats = await pub.getStats();
    stats.forEach((s) => {
      if (s.type !== 'remote-inbound-rtp') return;
      seen = true;
      fraction = Math.max(fraction, s.fractionLost ?? 0);
      rtt = Math.max(rtt, (s.roundTripTime ?? 0) * 1000);
    });
    const selected = selectedPath(stats);
    if (selected && !seen) rtt = selected.rtt;
    if (seen || selected) {
      const loss = fraction * 100;
      const via = selected ? `, via ${PATH_NAMES[selected.path]}` : '';
      this.#onQuality(this.#selfId, {
        level: rate(loss, rtt),
        detail: `sending: loss ${loss.toFixed(1)}%, round trip ${Math.round(rtt)} ms${via}`,
      });
    }
    if (selected) {
      this.#onReport({
        path: selected.path,
        rtt_ms: Math.min(60_000, Math.round(rtt)),
        loss_permille: Math.min(1000, Math.round(fraction * 1000)),
      });
    }
  }
}
