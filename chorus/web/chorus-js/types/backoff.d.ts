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
export function backoffDelay(attempt: number, { baseMs, maxMs, random }?: {
    baseMs?: number;
    maxMs?: number;
    random?: () => number;
}): number;
/**
 * Resolves after `ms` milliseconds, or at once (rejecting) when `signal` aborts.
 * @param {number} ms
 * @param {AbortSignal} [signal]
 * @returns {Promise<void>}
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void>;
