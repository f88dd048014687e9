// @ts-check
/**
 * The little SDP reading the client needs. No general parser: the browser
 * owns SDP; this only reads what protocol.md promises to put there.
 *
 * @module
 */

/**
 * Maps each m-line's `mid` to the stream id of its `a=msid` line.
 *
 * protocol.md: "In subscribe offers every m-line carries
 * `a=msid:<participant-id> <track-id>`", so on the subscribe connection this
 * tells which participant each receiving transceiver belongs to, without
 * depending on which `track` events the browser chose to fire.
 *
 * @param {string} sdp
 * @returns {Map<string, string>} mid → stream id (participant id)
 */
export function streamIdsByMid(sdp) {
  /** @type {Map<string, string>} */
  const owners = new Map();
  // Everything before the first m-line is the session part; skip it.
  for (const section of sdp.split(/\r?\nm=/).slice(1)) {
    const mid = /^a=mid:(\S+)/m.exec(section)?.[1];
    const streamId = /^a=msid:(\S+)/m.exec(section)?.[1];
    if (mid && streamId && streamId !== '-') owners.set(mid, streamId);
  }
  return owners;
}
