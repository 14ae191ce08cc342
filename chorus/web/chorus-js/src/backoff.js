/**
 * Reconnect and retry delays: exponential backoff with full jitter.
 * @module
 */

/**
 * A delay in milliseconds, uniform in [0, min(maxMs, baseMs * 2**attempt)] ("full
 * jitter"): clients that lost the same node spread out instead of returning together.
 * @param {number} attempt 1 for the first retry
 * @param {{baseMs?: number, maxMs?: number, random?: () => number}} [options]
 * @returns {number}
 */
export function backoffDelay(attempt, { baseMs = 100, maxMs = 5000, random = Math.random } = {}) {
  return random() * Math.min(maxMs, baseMs * 2 ** attempt);
}

/**
 * Resolves after `ms` milliseconds, or at once (rejecting) when `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(signal?.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
