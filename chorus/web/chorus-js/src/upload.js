/**
 * Uploads that report their progress: through `XMLHttpRequest` upload events in
 * browsers (a `fetch` with a streamed body needs HTTP/2 there), and as a streamed
 * `fetch` body elsewhere (Node), counted as the body is read.
 * @module
 */

/**
 * Called as an upload goes: `sent` bytes of `total` so far, never decreasing,
 * ending at `total` once every byte is sent.
 * @typedef {(sent: number, total: number) => void} ProgressListener
 */

/** The size of the pieces a streamed body is read in. */
const CHUNK = 64 * 1024;

/** Statuses whose response has no body (the `Response` constructor refuses one). */
const NULL_BODY = new Set([101, 204, 205, 304]);

/**
 * The size of an upload's data.
 * @param {Blob | ArrayBuffer | Uint8Array} data
 * @returns {number}
 */
export function byteSize(data) {
  return data instanceof Blob ? data.size : data.byteLength;
}

/**
 * A listener that passes on only progress past what it has reported: a request
 * sent again (after a refreshed token) starts from 0 and is not shown going back.
 * @param {ProgressListener} listener
 * @returns {ProgressListener}
 */
export function monotonic(listener) {
  let reported = -1;
  return (sent, total) => {
    if (sent <= reported) return;
    reported = sent;
    listener(sent, total);
  };
}

/**
 * A request body streaming `data`, reporting each piece as the request reads it
 * (with backpressure, that is as it goes out).
 * @param {Blob | ArrayBuffer | Uint8Array} data
 * @param {ProgressListener} onProgress
 * @returns {ReadableStream<Uint8Array>}
 */
export function progressBody(data, onProgress) {
  const total = byteSize(data);
  const bytes = data instanceof Blob ? null : data instanceof Uint8Array ? data : new Uint8Array(data);
  let sent = 0;
  return new ReadableStream({
    async pull(controller) {
      if (sent >= total) {
        controller.close();
        return;
      }
      const end = Math.min(total, sent + CHUNK);
      const piece = bytes === null ? new Uint8Array(await /** @type {Blob} */ (data).slice(sent, end).arrayBuffer()) : bytes.slice(sent, end);
      controller.enqueue(piece);
      sent = end;
      onProgress(sent, total);
    },
  });
}

/**
 * Whether this environment has `XMLHttpRequest` (browsers; not Node).
 * @returns {boolean}
 */
export function hasXhr() {
  return typeof globalThis.XMLHttpRequest === 'function';
}

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
export function xhrFetch(url, init, total, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(init.method ?? 'GET', url);
    for (const [name, value] of Object.entries(init.headers)) xhr.setRequestHeader(name, value);
    xhr.responseType = 'arraybuffer';
    xhr.upload.onprogress = (event) => onProgress(Math.min(event.loaded, total), total);
    xhr.upload.onload = () => onProgress(total, total);
    xhr.onload = () => {
      const headers = new Headers();
      for (const line of xhr.getAllResponseHeaders().trim().split(/[\r\n]+/)) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.append(line.slice(0, colon).trim(), line.slice(colon + 1).trim());
      }
      const body = NULL_BODY.has(xhr.status) ? null : xhr.response;
      resolve(new Response(body, { status: xhr.status, statusText: xhr.statusText, headers }));
    };
    xhr.onerror = () => reject(new TypeError('network error'));
    xhr.onabort = () => reject(new TypeError('upload aborted'));
    xhr.send(/** @type {XMLHttpRequestBodyInit | null} */ (init.body ?? null));
  });
}
