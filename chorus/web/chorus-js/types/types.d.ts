export type User = {
    id: string;
    username: string;
    display_name: string;
    created_at: number;
};
/**
 * A signed-in session: what register, login and refresh give.
 *
 * `refresh_token` is null in cookie mode: the server keeps it in an HttpOnly
 * cookie that no script can read (see docs/security.md).
 */
export type Session = {
    access_token: string;
    refresh_token: string | null;
    /**
     * seconds until `access_token` expires
     */
    expires_in: number;
    session_id: string;
    user: User;
};
/**
 * A thumbnail of an image file.
 */
export type Thumbnail = {
    name: string;
    width: number;
    height: number;
    size: number;
    content_type: string;
};
/**
 * An uploaded file, as `file` frames, attachments and `GET /files/{id}` show it.
 */
export type FileInfo = {
    id: string;
    name: string;
    size: number;
    content_type: string;
    state: "pending" | "scanning" | "ready" | "rejected";
    reason: string | null;
    scan: string | null;
    width: number | null;
    height: number | null;
    thumbnails: Thumbnail[];
    created_at: number;
};
/**
 * A stored message.
 */
export type Message = {
    id: string;
    room: string;
    seq: number;
    sender: string;
    body: string;
    client_id: string;
    created_at: number;
    edited_at: number | null;
    /**
     * the root message's id for a thread reply
     */
    thread: string | null;
    attachments: FileInfo[];
    /**
     * in an end-to-end encrypted room, the
     * message sealed by the sender's device (`body` is empty then); chorus-js cannot open it
     */
    encrypted?: MegolmEnvelope | null | undefined;
};
/**
 * An end-to-end encrypted message as the server relays it (docs/e2e.md): opaque here.
 */
export type MegolmEnvelope = {
    algorithm: "m.megolm.v1.aes-sha2";
    sender_key: string;
    device_id: string;
    session_id: string;
    ciphertext: string;
};
/**
 * A room; in the caller's room list also the read marker, and `others` for direct rooms.
 */
export type Room = {
    id: string;
    name: string;
    kind: "public" | "private" | "direct";
    created_by: string;
    created_at: number;
    last_seq: number;
    /**
     * an end-to-end encrypted conversation (for good): chorus-js
     * can list it but not read or write its messages (docs/js-sdk.md)
     */
    encrypted?: boolean | undefined;
    others?: User[] | null | undefined;
    read_seq?: number | null | undefined;
};
/**
 * Unread messages and mentions of the caller in one room.
 */
export type Unread = {
    unread: number;
    mentions: number;
};
/**
 * A room of `HttpApi.roomsWithUnread`: the room and its counts.
 */
export type RoomSummary = Room & Unread;
export type Notification = {
    id: string;
    room: string;
    message: string;
    seq: number;
    kind: string;
    created_at: number;
    read_at?: number | null | undefined;
};
export type SearchHit = {
    message: Message;
    /**
     * the body with matches marked
     */
    snippet: string;
};
/**
 * One message with its reaction counts and thread summary.
 */
export type MessageDetail = {
    message: Message;
    /**
     * emoji → count
     */
    reactions: Record<string, number>;
    reply_count: number;
    last_reply_at: number | null;
    deleted_at: number | null;
};
export type SessionInfo = {
    id: string;
    current: boolean;
    user_agent: string;
    address: string;
    created_at: number;
    last_seen_at: number;
    expires_at: number;
    max_expires_at: number;
};
export type Invitation = {
    room: Room;
    invited_by: string;
    created_at: number;
};
export type ReadyFrame = {
    type: "ready";
    session_id: string;
    user_id: string;
    heartbeat_interval_ms: number;
    resume_limit: number;
};
export type MessageEvent = {
    type: "message";
} & Message;
export type EditedEvent = {
    type: "edited";
    room: string;
    seq: number;
    message: string;
    editor: string;
    body: string;
    edited_at: number;
    client_id: string;
};
export type DeletedEvent = {
    type: "deleted";
    room: string;
    seq: number;
    message: string;
    deleted_by: string;
    deleted_at: number;
    client_id: string;
};
export type ReactionEvent = {
    type: "reaction";
    room: string;
    seq: number;
    message: string;
    user: string;
    emoji: string;
    present: boolean;
    at: number;
    client_id: string;
};
/**
 * A sequenced room event: delivered once each, in seq order per room.
 */
export type RoomEvent = MessageEvent | EditedEvent | DeletedEvent | ReactionEvent;
export type ReceiptEvent = {
    type: "receipt";
    room: string;
    user: string;
    seq: number;
};
export type TypingEvent = {
    type: "typing";
    room: string;
    user: string;
    expires_in_ms: number;
};
export type PresenceEvent = {
    type: "presence";
    user: string;
    status: "online" | "idle" | "offline";
};
export type NotificationEvent = {
    type: "notification";
    id: string;
    room: string;
    message: string;
    seq: number;
    kind: string;
    sender: string;
    created_at: number;
    preview: string;
};
export type RoomAddedEvent = {
    type: "room_added";
    room: string;
    name: string;
    kind: string;
    seq: number;
    by: string | null;
};
export type RoomRemovedEvent = {
    type: "room_removed";
    room: string;
    by: string | null;
};
export type RoomInvitedEvent = {
    type: "room_invited";
    room: string;
    name: string;
    by: string;
};
export type FileEvent = {
    type: "file";
    file: FileInfo;
};
export type NoticeEvent = {
    type: "notice";
    code: string;
    message: string;
    reconnect_url?: string | null | undefined;
};
export type TooFarEvent = {
    type: "too_far";
    room: string;
    after_seq: number;
    last_seq: number;
};
/**
 * The connection dropped; the client is reconnecting (once per outage).
 */
export type ConnectionLostEvent = {
    type: "connection_lost";
    /**
     * the WebSocket close code, if any
     */
    code: number | null;
    reason: string;
};
/**
 * Connected again after `connection_lost`, every joined room resumed; the
 * `caught_up` messages missed meanwhile were emitted before this.
 */
export type ReconnectedEvent = {
    type: "reconnected";
    caught_up: number;
};
/**
 * A room the user became a member of while disconnected; it is followed now.
 */
export type RoomFoundEvent = {
    type: "room_found";
    room: Room;
};
/**
 * A message of the outbox was stored (acknowledged), also one queued before a reload.
 */
export type SentEvent = {
    type: "sent";
    client_id: string;
    message: Message;
};
/**
 * A message of the outbox was refused for good and removed from it.
 */
export type SendFailedEvent = {
    type: "send_failed";
    client_id: string;
    error: import("./errors.js").ChorusError;
};
/**
 * Every event `RealtimeClient.on` can deliver, by `type`.
 */
export type EventMap = {
    message: MessageEvent;
    edited: EditedEvent;
    deleted: DeletedEvent;
    reaction: ReactionEvent;
    receipt: ReceiptEvent;
    typing: TypingEvent;
    presence: PresenceEvent;
    notification: NotificationEvent;
    room_added: RoomAddedEvent;
    room_removed: RoomRemovedEvent;
    room_invited: RoomInvitedEvent;
    file: FileEvent;
    notice: NoticeEvent;
    too_far: TooFarEvent;
    ready: ReadyFrame;
    connection_lost: ConnectionLostEvent;
    reconnected: ReconnectedEvent;
    room_found: RoomFoundEvent;
    sent: SentEvent;
    send_failed: SendFailedEvent;
};
