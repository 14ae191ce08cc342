/**
 * The shapes the server sends and the SDK returns, as JSDoc types (no runtime code).
 *
 * Field names are the server's (snake_case), so a value can be compared with
 * docs/protocol.md and docs/api.md as is; fields newer servers add pass through.
 * @module
 */

/**
 * @typedef {object} User
 * @property {string} id
 * @property {string} username
 * @property {string} display_name
 * @property {number} created_at
 */

/**
 * A signed-in session: what register, login and refresh give.
 *
 * `refresh_token` is null in cookie mode: the server keeps it in an HttpOnly
 * cookie that no script can read (see docs/security.md).
 * @typedef {object} Session
 * @property {string} access_token
 * @property {string | null} refresh_token
 * @property {number} expires_in seconds until `access_token` expires
 * @property {string} session_id
 * @property {User} user
 */

/**
 * A thumbnail of an image file.
 * @typedef {object} Thumbnail
 * @property {string} name
 * @property {number} width
 * @property {number} height
 * @property {number} size
 * @property {string} content_type
 */

/**
 * An uploaded file, as `file` frames, attachments and `GET /files/{id}` show it.
 * @typedef {object} FileInfo
 * @property {string} id
 * @property {string} name
 * @property {number} size
 * @property {string} content_type
 * @property {'pending' | 'scanning' | 'ready' | 'rejected'} state
 * @property {string | null} reason
 * @property {string | null} scan
 * @property {number | null} width
 * @property {number | null} height
 * @property {Thumbnail[]} thumbnails
 * @property {number} created_at
 */

/**
 * A stored message.
 * @typedef {object} Message
 * @property {string} id
 * @property {string} room
 * @property {number} seq
 * @property {string} sender
 * @property {string} body
 * @property {string} client_id
 * @property {number} created_at
 * @property {number | null} edited_at
 * @property {string | null} thread the root message's id for a thread reply
 * @property {FileInfo[]} attachments
 * @property {MegolmEnvelope | null} [encrypted] in an end-to-end encrypted room, the
 *   message sealed by the sender's device (`body` is empty then); chorus-js cannot open it
 */

/**
 * An end-to-end encrypted message as the server relays it (docs/e2e.md): opaque here.
 * @typedef {object} MegolmEnvelope
 * @property {'m.megolm.v1.aes-sha2'} algorithm
 * @property {string} sender_key
 * @property {string} device_id
 * @property {string} session_id
 * @property {string} ciphertext
 */

/**
 * A room; in the caller's room list also the read marker, and `others` for direct rooms.
 * @typedef {object} Room
 * @property {string} id
 * @property {string} name
 * @property {'public' | 'private' | 'direct'} kind
 * @property {string} created_by
 * @property {number} created_at
 * @property {number} last_seq
 * @property {boolean} [encrypted] an end-to-end encrypted conversation (for good): chorus-js
 *   can list it but not read or write its messages (docs/js-sdk.md)
 * @property {User[] | null} [others]
 * @property {number | null} [read_seq]
 */

/**
 * Unread messages and mentions of the caller in one room.
 * @typedef {object} Unread
 * @property {number} unread
 * @property {number} mentions
 */

/**
 * A room of `HttpApi.roomsWithUnread`: the room and its counts.
 * @typedef {Room & Unread} RoomSummary
 */

/**
 * @typedef {object} Notification
 * @property {string} id
 * @property {string} room
 * @property {string} message
 * @property {number} seq
 * @property {string} kind
 * @property {number} created_at
 * @property {number | null} [read_at]
 */

/**
 * @typedef {object} SearchHit
 * @property {Message} message
 * @property {string} snippet the body with matches marked
 */

/**
 * One message with its reaction counts and thread summary.
 * @typedef {object} MessageDetail
 * @property {Message} message
 * @property {Record<string, number>} reactions emoji → count
 * @property {number} reply_count
 * @property {number | null} last_reply_at
 * @property {number | null} deleted_at
 */

/**
 * @typedef {object} SessionInfo
 * @property {string} id
 * @property {boolean} current
 * @property {string} user_agent
 * @property {string} address
 * @property {number} created_at
 * @property {number} last_seen_at
 * @property {number} expires_at
 * @property {number} max_expires_at
 */

/**
 * @typedef {object} Invitation
 * @property {Room} room
 * @property {string} invited_by
 * @property {number} created_at
 */

// -- server frames (docs/protocol.md, "Server frames") ------------------------------------

/**
 * @typedef {object} ReadyFrame
 * @property {'ready'} type
 * @property {string} session_id
 * @property {string} user_id
 * @property {number} heartbeat_interval_ms
 * @property {number} resume_limit
 */

/** @typedef {{type: 'message'} & Message} MessageEvent */

/**
 * @typedef {object} EditedEvent
 * @property {'edited'} type
 * @property {string} room
 * @property {number} seq
 * @property {string} message
 * @property {string} editor
 * @property {string} body
 * @property {number} edited_at
 * @property {string} client_id
 */

/**
 * @typedef {object} DeletedEvent
 * @property {'deleted'} type
 * @property {string} room
 * @property {number} seq
 * @property {string} message
 * @property {string} deleted_by
 * @property {number} deleted_at
 * @property {string} client_id
 */

/**
 * @typedef {object} ReactionEvent
 * @property {'reaction'} type
 * @property {string} room
 * @property {number} seq
 * @property {string} message
 * @property {string} user
 * @property {string} emoji
 * @property {boolean} present
 * @property {number} at
 * @property {string} client_id
 */

/**
 * A sequenced room event: delivered once each, in seq order per room.
 * @typedef {MessageEvent | EditedEvent | DeletedEvent | ReactionEvent} RoomEvent
 */

/**
 * @typedef {object} ReceiptEvent
 * @property {'receipt'} type
 * @property {string} room
 * @property {string} user
 * @property {number} seq
 */

/**
 * @typedef {object} TypingEvent
 * @property {'typing'} type
 * @property {string} room
 * @property {string} user
 * @property {number} expires_in_ms
 */

/**
 * @typedef {object} PresenceEvent
 * @property {'presence'} type
 * @property {string} user
 * @property {'online' | 'idle' | 'offline'} status
 */

/**
 * @typedef {object} NotificationEvent
 * @property {'notification'} type
 * @property {string} id
 * @property {string} room
 * @property {string} message
 * @property {number} seq
 * @property {string} kind
 * @property {string} sender
 * @property {number} created_at
 * @property {string} preview
 */

/**
 * @typedef {object} RoomAddedEvent
 * @property {'room_added'} type
 * @property {string} room
 * @property {string} name
 * @property {string} kind
 * @property {number} seq
 * @property {string | null} by
 */

/**
 * @typedef {object} RoomRemovedEvent
 * @property {'room_removed'} type
 * @property {string} room
 * @property {string | null} by
 */

/**
 * @typedef {object} RoomInvitedEvent
 * @property {'room_invited'} type
 * @property {string} room
 * @property {string} name
 * @property {string} by
 */

/**
 * @typedef {object} FileEvent
 * @property {'file'} type
 * @property {FileInfo} file
 */

/**
 * @typedef {object} NoticeEvent
 * @property {'notice'} type
 * @property {string} code
 * @property {string} message
 * @property {string | null} [reconnect_url]
 */

/**
 * @typedef {object} TooFarEvent
 * @property {'too_far'} type
 * @property {string} room
 * @property {number} after_seq
 * @property {number} last_seq
 */

// -- events of the SDK itself ---------------------------------------------------------

/**
 * The connection dropped; the client is reconnecting (once per outage).
 * @typedef {object} ConnectionLostEvent
 * @property {'connection_lost'} type
 * @property {number | null} code the WebSocket close code, if any
 * @property {string} reason
 */

/**
 * Connected again after `connection_lost`, every joined room resumed; the
 * `caught_up` messages missed meanwhile were emitted before this.
 * @typedef {object} ReconnectedEvent
 * @property {'reconnected'} type
 * @property {number} caught_up
 */

/**
 * A room the user became a member of while disconnected; it is followed now.
 * @typedef {object} RoomFoundEvent
 * @property {'room_found'} type
 * @property {Room} room
 */

/**
 * A message of the outbox was stored (acknowledged), also one queued before a reload.
 * @typedef {object} SentEvent
 * @property {'sent'} type
 * @property {string} client_id
 * @property {Message} message
 */

/**
 * A message of the outbox was refused for good and removed from it.
 * @typedef {object} SendFailedEvent
 * @property {'send_failed'} type
 * @property {string} client_id
 * @property {import('./errors.js').ChorusError} error
 */

/**
 * Every event `RealtimeClient.on` can deliver, by `type`.
 * @typedef {object} EventMap
 * @property {MessageEvent} message
 * @property {EditedEvent} edited
 * @property {DeletedEvent} deleted
 * @property {ReactionEvent} reaction
 * @property {ReceiptEvent} receipt
 * @property {TypingEvent} typing
 * @property {PresenceEvent} presence
 * @property {NotificationEvent} notification
 * @property {RoomAddedEvent} room_added
 * @property {RoomRemovedEvent} room_removed
 * @property {RoomInvitedEvent} room_invited
 * @property {FileEvent} file
 * @property {NoticeEvent} notice
 * @property {TooFarEvent} too_far
 * @property {ReadyFrame} ready
 * @property {ConnectionLostEvent} connection_lost
 * @property {ReconnectedEvent} reconnected
 * @property {RoomFoundEvent} room_found
 * @property {SentEvent} sent
 * @property {SendFailedEvent} send_failed
 */

export {};
