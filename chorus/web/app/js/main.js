/**
 * The web client's entry point: restore the session (the refresh cookie) or sign in,
 * then run the chat screen on a `RealtimeClient` whose outbox is in IndexedDB.
 * While offline the page opens from the service worker's cache with the last known
 * rooms, and what is written is sent once the connection is back.
 * @module
 */

import { ChorusError, HttpApi, RealtimeClient } from '/chorus-js/index.js';
import { ChatScreen } from './chat.js';
import { signIn } from './login.js';
import { IndexedDbOutbox, loadCache, saveCache } from './store.js';

const root = /** @type {HTMLElement} */ (document.getElementById('app'));
const status = /** @type {HTMLElement} */ (document.getElementById('status'));

/** Connection state shown at the top: offline, reconnecting, or nothing when all is well. */
const connection = { online: navigator.onLine, connected: false, started: false };

function renderStatus() {
  const text = !connection.online
    ? 'Offline: messages you write are kept and sent when the connection is back.'
    : connection.started && !connection.connected
      ? 'Reconnecting…'
      : '';
  status.hidden = text === '';
  status.textContent = text;
  document.body.dataset.connection = !connection.online ? 'offline' : connection.connected ? 'online' : 'connecting';
}

window.addEventListener('online', () => {
  connection.online = true;
  renderStatus();
});
window.addEventListener('offline', () => {
  connection.online = false;
  renderStatus();
});

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('/sw.js').catch((error) => console.warn('chorus: no offline support:', error));
}

async function main() {
  renderStatus();
  const api = new HttpApi('', { tokenMode: 'cookie' });
  let user = null;
  let rooms = [];
  try {
    user = (await api.refresh()).user;
  } catch (error) {
    const cached = loadCache();
    if (!(error instanceof ChorusError) && cached !== null) {
      // The server cannot be reached: open with what was last shown; the client
      // restores the session (the cookie) once it can.
      user = cached.user;
      rooms = cached.rooms;
    }
  }
  if (user === null) {
    saveCache(null);
    user = (await signIn(root, api)).user;
  }
  const outbox = await IndexedDbOutbox.open(user.id);
  const client = new RealtimeClient(api, { outbox, clientName: 'chorus-web/1' });
  // A socket can outlive the network (the browser keeps it until a timeout): drop it
  // when the browser goes offline, so what is written from then on waits in the
  // outbox; back online, reconnect at once instead of after the backoff pause.
  window.addEventListener('offline', () => client.dropConnection('offline'));
  window.addEventListener('online', () => client.reconnectNow());
  const screen = new ChatScreen(root, api, client, user, rooms, async () => {
    await client.close();
    await api.logout().catch(() => {});
    outbox.close();
    saveCache(null);
    location.reload();
  });
  screen.composer.stored = await outbox.list();
  outbox.onchange = () => screen.composer.outboxChanged();
  client.on('ready', () => {
    connection.connected = true;
    renderStatus();
    screen.roomView.renderTimeline();
  });
  client.on('connection_lost', () => {
    connection.connected = false;
    renderStatus();
    screen.roomView.renderTimeline();
  });
  client.on('reconnected', () => {
    connection.connected = true;
    renderStatus();
    void screen.refreshRooms();
    void screen.invites.load(); // invitations revoked meanwhile go (no event tells)
  });
  document.addEventListener('visibilitychange', () => {
    // Away from the tab: "idle" for the others; back: online, and what is shown is read.
    client.setPresence(document.visibilityState === 'visible' ? 'online' : 'idle');
    screen.roomView.markReadIfSeen();
  });
  client.on('session_ended', () => {
    saveCache(null);
    location.reload();
  });
  // Subscribe to the rooms known from the last visit before connecting: the resume
  // goes out before the outbox is re-sent, so its messages find their rooms joined.
  for (const room of rooms) {
    client.resumeRoom(room.id, room.last_seq ?? 0).catch((error) => console.warn('chorus: cannot resume', room.id, error));
  }
  window.addEventListener('pagehide', () => screen.saveRooms());
  connection.started = true;
  renderStatus();
  const last = screen.lastRoom();
  if (last !== null) void screen.open(last); // offline: its pending messages show at once
  await client.connect();
  await screen.start();
}

main().catch((error) => {
  console.error(error);
  root.textContent = `Chorus could not start: ${error}`;
});
