/**
 * The service worker: keeps the app shell (this app's and the SDK's files, as listed
 * by the server in /shell.json) so the page opens offline. Network first: online,
 * every file comes fresh (and refreshes the copy); offline, the copy answers. The
 * API, the gateway and files are never cached (they carry private data).
 */

const CACHE = 'chorus-shell';

self.addEventListener('install', (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const shell = await (await fetch('/shell.json', { cache: 'no-cache' })).json();
      await cache.addAll(shell.files);
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** @param {URL} url */
function isShell(url) {
  return url.origin === self.location.origin && (url.pathname === '/' || /^\/(js\/|chorus-js\/)?[\w./-]+\.(js|css|svg|html|webmanifest)$/.test(url.pathname));
}

self.addEventListener('fetch', (event) => {
  const request = event.request;
  const url = new URL(request.url);
  if (request.method !== 'GET' || !isShell(url)) return;
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      try {
        const response = await fetch(request);
        if (response.ok) await cache.put(request, response.clone());
        return response;
      } catch (error) {
        const copy = (await cache.match(request, { ignoreSearch: true })) ?? (request.mode === 'navigate' ? await cache.match('/') : undefined);
        if (copy !== undefined) return copy;
        throw error;
      }
    })(),
  );
});
