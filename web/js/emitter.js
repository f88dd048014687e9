// @ts-check
/**
 * A small typed event emitter.
 *
 * `EventTarget` would do the dispatching, but its listeners receive untyped
 * `Event`s, so every handler would need a cast. This keeps the payload type of
 * each event name, so `client.on('joined', (m) => m.self.id)` type-checks.
 *
 * @module
 */

/**
 * @template {object} Events map from event name to payload type
 */
export class Emitter {
  /** @type {Map<keyof Events, Set<(payload: never) => void>>} */
  #handlers = new Map();

  /**
   * Calls `handler` for every `type` event until the returned function is called.
   *
   * @template {keyof Events} K
   * @param {K} type
   * @param {(payload: Events[K]) => void} handler
   * @returns {() => void} removes the handler
   */
  on(type, handler) {
    let set = this.#handlers.get(type);
    if (!set) {
      set = new Set();
      this.#handlers.set(type, set);
    }
    set.add(handler);
    return () => {
      set.delete(handler);
    };
  }

  /**
   * Calls `handler` for the next `type` event only.
   *
   * @template {keyof Events} K
   * @param {K} type
   * @param {(payload: Events[K]) => void} handler
   * @returns {() => void} removes the handler if it has not run yet
   */
  once(type, handler) {
    const off = this.on(type, (payload) => {
      off();
      handler(payload);
    });
    return off;
  }

  /**
   * Delivers `payload` to every handler of `type`. A throwing handler is
   * reported but does not stop the others: one broken UI widget must not
   * keep the media session from hearing about an offer.
   *
   * @protected
   * @template {keyof Events} K
   * @param {K} type
   * @param {Events[K]} payload
   */
  emit(type, payload) {
    const set = this.#handlers.get(type);
    if (!set) return;
    for (const handler of [...set]) {
      try {
        /** @type {(payload: Events[K]) => void} */ (handler)(payload);
      } catch (err) {
        reportError(err);
      }
    }
  }
}
