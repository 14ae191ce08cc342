/**
 * The size of an upload's data.
 * @param {Blob | ArrayBuffer | Uint8Array} data
 * @returns {number}
 */
export function byteSize(data: Blob | ArrayBuffer | Uint8Array): number;
/**
 * A listener that passes on only progress past what it has reported: a request
 * sent again (after a refreshed token) starts from 0 and is not shown going back.
 * @param {ProgressListener} listener
 * @returns {ProgressListener}
 */
export function monotonic(listener: ProgressListener): ProgressListener;
/**
 * A request body streaming `data`, reporting each piece as the request reads it
 * (with backpressure, that is as it goes out).
 * @param {Blob | ArrayBuffer | Uint8Array} data
 * @param {ProgressListener} onProgress
 * @returns {ReadableStream<Uint8Array>}
 */
export function progressBody(data: Blob | ArrayBuffer | Uint8Array, onProgress: ProgressListener): ReadableStream<Uint8Array>;
/**
 * Whether this environment has `XMLHttpRequest` (browsers; not Node).
 * @returns {boolean}
 */
export function hasXhr(): boolean;
/**
 * `fetch` through `XMLHttpRequest`, for its upload progress events; the response
 * as a `Response`. A network failure rejects with a `TypeError`, as `fetch` does.
 *
 * Cookies: XHR cannot omit them on a same-origin request as `credentials: 'omit'`
 * does; the only cookie Chorus sets is limited to the refresh route, so an upload
 * never carries it either way. Cross-origin, none are sent (`withCredentials` off).
 * @param {string} url
 * @param {RequestInit & {headers: Record<string, string>}} init
 * @param {number} total the body's size
 * @param {ProgressListener} onProgress
 * @returns {Promise<Response>}
 */
export function xhrFetch(url: string, init: RequestInit & {
    headers: Record<string, string>;
}, total: number, onProgress: ProgressListener): Promise<Response>;
/**
 * Called as an upload goes: `sent` bytes of `total` so far, never decreasing,
 * ending at `total` once every byte is sent.
 */
export type ProgressListener = (sent: number, total: number) => void;
