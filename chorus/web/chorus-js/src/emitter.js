/**
 * A small typed event emitter (the same in browsers and Node).
 * @module
 */

/**
 * @template {object} M event type → payload
 */
export class Emitter {
  constructor() {
    /** @type {Map<keyof M, Set<(event: any) => void>>} */
    this._listeners = new Map();
  }

  /**
   * Call `listener` for every event of `type`; returns a function that removes it.
   * A listener that throws is reported (`reportError`/console) and the others still run.
   * @template {keyof M} K
   * @param {K} type
   * @param {(event: M[K]) => void} listener
   * @returns {() => void}
   */
  on(type, listener) {
    let set = this._listeners.get(type);
    if (set === undefined) {
      set = new Set();
      this._listeners.set(type, set);
    }
    set.add(listener);
    return () => this.off(type, listener);
  }

  /**
   * @template {keyof M} K
   * @param {K} type
   * @param {(event: M[K]) => void} listener
   */
  off(type, listener) {
    this._listeners.get(type)?.delete(listener);
  }

  /**
   * @template {keyof M} K
   * @param {K} type
   * @param {M[K]} event
   */
  emit(type, event) {
    for (const listener of [...(this._listeners.get(type) ?? [])]) {
      try {
        listener(event);
      } catch (error) {
        // One faulty handler must not stop delivery to the others (or the reader loop).
        if (typeof globalThis.reportError === 'function') globalThis.reportError(error);
        else console.error(error);
      }
    }
  }
}
