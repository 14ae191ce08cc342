/**
 * A small typed event emitter (the same in browsers and Node).
 * @module
 */
/**
 * @template {object} M event type → payload
 */
export class Emitter<M extends object> {
    /** @type {Map<keyof M, Set<(event: any) => void>>} */
    _listeners: Map<keyof M, Set<(event: any) => void>>;
    /**
     * Call `listener` for every event of `type`; returns a function that removes it.
     * A listener that throws is reported (`reportError`/console) and the others still run.
     * @template {keyof M} K
     * @param {K} type
     * @param {(event: M[K]) => void} listener
     * @returns {() => void}
     */
    on<K extends keyof M>(type: K, listener: (event: M[K]) => void): () => void;
    /**
     * @template {keyof M} K
     * @param {K} type
     * @param {(event: M[K]) => void} listener
     */
    off<K extends keyof M>(type: K, listener: (event: M[K]) => void): void;
    /**
     * @template {keyof M} K
     * @param {K} type
     * @param {M[K]} event
     */
    emit<K extends keyof M>(type: K, event: M[K]): void;
}
