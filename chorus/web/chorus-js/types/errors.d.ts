/**
 * The errors the SDK throws.
 * @module
 */
/**
 * The server refused a request: `status` (HTTP; 400 for a refused frame), `code`
 * (stable, see docs/api.md and docs/protocol.md "Error codes") and `message`.
 *
 * `retryAfter` is the seconds a 429 or 503 asked to wait (`Retry-After`), else null.
 */
export class ChorusError extends Error {
    /**
     * @param {number} status
     * @param {string} code
     * @param {string} message
     * @param {number | null} [retryAfter]
     */
    constructor(status: number, code: string, message: string, retryAfter?: number | null);
    status: number;
    code: string;
    detail: string;
    retryAfter: number | null;
}
/**
 * The password was right but the account has two-factor authentication: call
 * `HttpApi.completeLogin(challengeToken, code)` within `expiresIn` seconds.
 */
export class TwoFactorRequired extends Error {
    /**
     * @param {string} challengeToken
     * @param {number} expiresIn
     */
    constructor(challengeToken: string, expiresIn: number);
    challengeToken: string;
    expiresIn: number;
}
/** The client was closed (`RealtimeClient.close`) before the operation finished. */
export class ClientClosed extends Error {
    constructor();
}
