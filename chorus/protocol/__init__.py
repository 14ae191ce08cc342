"""The Chorus wire protocol, version 1 (WebSocket subprotocol `chorus.v1`).

Frames are frozen attrs classes; `decode_client_frame` / `decode_server_frame`
turn one WebSocket text message into a frame or raise `ProtocolError` (and
never anything else); `encode` turns a frame into JSON bytes. Every limit is
declared once on the frame classes and drives validation, decoding and the
JSON Schema (`json_schema_document`). docs/protocol.md is the reference.

The field rules (`StrSpec`, `IntSpec`, `BoolSpec`, `ChoiceSpec`, with
`spec_schema`) are public so that the HTTP API checks and documents its
input with the very same rules and messages.
"""

from ._codec import decode_client_frame as decode_client_frame
from ._codec import decode_server_frame as decode_server_frame
from ._codec import describe_json_value as describe_json_value
from ._codec import encode as encode
from ._codec import encode_message_event as encode_message_event
from ._codec import encode_send_ack as encode_send_ack
from ._errors import MAX_RECONNECT_DELAY_MS as MAX_RECONNECT_DELAY_MS
from ._errors import RECONNECT_HINT as RECONNECT_HINT
from ._errors import CloseCode as CloseCode
from ._errors import ErrorCode as ErrorCode
from ._errors import ProtocolError as ProtocolError
from ._errors import reconnect_delay as reconnect_delay
from ._errors import reconnect_reason as reconnect_reason
from ._fields import BoolSpec as BoolSpec
from ._fields import ChoiceSpec as ChoiceSpec
from ._fields import IntSpec as IntSpec
from ._fields import StrSpec as StrSpec
from ._fields import field_spec as field_spec
from ._fields import nonempty_one_of_rule as nonempty_one_of_rule
from ._fields import shorten as shorten
from ._frames import MEGOLM as MEGOLM
from ._frames import OLM as OLM
from ._frames import Ack as Ack
from ._frames import ClientFrame as ClientFrame
from ._frames import Delete as Delete
from ._frames import DeletedEvent as DeletedEvent
from ._frames import Edit as Edit
from ._frames import EditedEvent as EditedEvent
from ._frames import ErrorReply as ErrorReply
from ._frames import FileInfo as FileInfo
from ._frames import FileUpdate as FileUpdate
from ._frames import Frame as Frame
from ._frames import Hello as Hello
from ._frames import Join as Join
from ._frames import Leave as Leave
from ._frames import MarkRead as MarkRead
from ._frames import MegolmEnvelope as MegolmEnvelope
from ._frames import Message as Message
from ._frames import MessageEvent as MessageEvent
from ._frames import Notice as Notice
from ._frames import NotificationEvent as NotificationEvent
from ._frames import OlmCiphertext as OlmCiphertext
from ._frames import OlmEnvelope as OlmEnvelope
from ._frames import OneTimeKeysLow as OneTimeKeysLow
from ._frames import Ping as Ping
from ._frames import Pong as Pong
from ._frames import PresenceEvent as PresenceEvent
from ._frames import React as React
from ._frames import ReactionEvent as ReactionEvent
from ._frames import Ready as Ready
from ._frames import ReceiptEvent as ReceiptEvent
from ._frames import Replayed as Replayed
from ._frames import Resume as Resume
from ._frames import RoomAdded as RoomAdded
from ._frames import RoomInvited as RoomInvited
from ._frames import RoomRemoved as RoomRemoved
from ._frames import Send as Send
from ._frames import ServerFrame as ServerFrame
from ._frames import SetPresence as SetPresence
from ._frames import Thumbnail as Thumbnail
from ._frames import ToDeviceAck as ToDeviceAck
from ._frames import ToDeviceEvent as ToDeviceEvent
from ._frames import TooFar as TooFar
from ._frames import Typing as Typing
from ._frames import TypingEvent as TypingEvent
from ._limits import MAX_ATTACHMENTS as MAX_ATTACHMENTS
from ._limits import MAX_BODY_CHARS as MAX_BODY_CHARS
from ._limits import MAX_CIPHERTEXT_CHARS as MAX_CIPHERTEXT_CHARS
from ._limits import MAX_CLIENT_CHARS as MAX_CLIENT_CHARS
from ._limits import MAX_CONTENT_TYPE_CHARS as MAX_CONTENT_TYPE_CHARS
from ._limits import MAX_DEPTH as MAX_DEPTH
from ._limits import MAX_EMOJI_CHARS as MAX_EMOJI_CHARS
from ._limits import MAX_FILE_NAME_CHARS as MAX_FILE_NAME_CHARS
from ._limits import MAX_FRAME_BYTES as MAX_FRAME_BYTES
from ._limits import MAX_ID_CHARS as MAX_ID_CHARS
from ._limits import MAX_KEY_CHARS as MAX_KEY_CHARS
from ._limits import MAX_NONCE_CHARS as MAX_NONCE_CHARS
from ._limits import MAX_PREVIEW_CHARS as MAX_PREVIEW_CHARS
from ._limits import MAX_RESUME_ROOMS as MAX_RESUME_ROOMS
from ._limits import MAX_ROOM_NAME_CHARS as MAX_ROOM_NAME_CHARS
from ._limits import MAX_SAFE_INT as MAX_SAFE_INT
from ._limits import MAX_TEXT_CHARS as MAX_TEXT_CHARS
from ._limits import MAX_THUMBNAILS as MAX_THUMBNAILS
from ._limits import MAX_TOKEN_CHARS as MAX_TOKEN_CHARS
from ._limits import MAX_URL_CHARS as MAX_URL_CHARS
from ._schema import json_schema_document as json_schema_document
from ._schema import spec_schema as spec_schema
from ._types import ClientId as ClientId
from ._types import Count as Count
from ._types import Emoji as Emoji
from ._types import EpochMs as EpochMs
from ._types import EventSeq as EventSeq
from ._types import FileId as FileId
from ._types import MessageId as MessageId
from ._types import Millis as Millis
from ._types import NotificationId as NotificationId
from ._types import NotificationKind as NotificationKind
from ._types import PresenceStatus as PresenceStatus
from ._types import Ref as Ref
from ._types import RoomId as RoomId
from ._types import Seq as Seq
from ._types import SessionId as SessionId
from ._types import UserId as UserId
from ._version import SUBPROTOCOL as SUBPROTOCOL
from ._version import select_subprotocol as select_subprotocol
