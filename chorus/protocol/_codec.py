"""JSON text to frames (strict and total) and frames to JSON bytes (fast).

Decoding is hand-rolled rather than done by a cattrs converter: strictness
would need a custom cattrs hook for every type anyway, the checks must run in
a fixed order (unknown fields, then missing ones, then JSON types, then
limits) with field-named messages, and mapping cattrs' nested exception
groups back to that order is more code than the checks themselves. Speed is
the same (a typical `send` frame: 3.9 µs here, including the envelope checks;
2.6 µs for a strict cattrs converter without them). Each frame class gets a
decoder closure, compiled once at import from the same `Spec`s that validate
construction and generate the JSON Schema. Most frame types (`send` among
them) also get a fast decoder generated from those `Spec`s, which takes the
common frames and leaves everything else, every error included, to the
closure (`_fast_decoder`).
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs
import orjson

from ._errors import ErrorCode, ProtocolError
from ._fields import (
    BoolSpec,
    ChoiceSpec,
    ConstraintViolation,
    IntSpec,
    ListSpec,
    MapSpec,
    NullableSpec,
    ObjectSpec,
    Spec,
    StrListSpec,
    StrSpec,
    check_condition,
    check_nonempty_one_of,
    condition,
    field_specs,
    flattened,
    shorten,
    spec_for,
)
from ._frames import ClientFrame, Frame, MessageEvent, ServerFrame
from ._limits import MAX_DEPTH, MAX_FRAME_BYTES
from ._types import Ref

T = TypeVar("T")
_Decoder = Callable[[dict[str, Any]], T]
_FastDecoder = Callable[[dict[str, Any]], T | None]
_Structure = Callable[[Any], Any]

_REF: Final = spec_for(Ref, where="ref")


def decode_client_frame(data: bytes | str) -> ClientFrame:
    """Decode one WebSocket text message from a client.

    Returns the frame, or raises `ProtocolError` (and nothing else, whatever
    `data` holds). Checks run in this order and the first failure is raised:
    size, UTF-8, JSON syntax, nesting depth, top-level object, `type` tag
    (present, a string, a client frame type), unknown fields, missing fields,
    JSON types of fields (then of nested fields), limits of fields.
    """
    return _decode(data, _CLIENT_FAST, _CLIENT_DECODERS, "client")


def decode_server_frame(data: bytes | str) -> ServerFrame:
    """Decode one WebSocket text message from the server (for clients and tests).

    Same contract and order of checks as `decode_client_frame`.
    """
    return _decode(data, _SERVER_FAST, _SERVER_DECODERS, "server")


def encode(frame: Frame) -> bytes:
    """The frame as UTF-8 JSON bytes: one flat object, `type` first, every field present.

    Optional fields that are None are written as null, so a frame type always
    has the same keys. The result decodes back to an equal frame. Raises
    TypeError for anything but a frame instance (or a string holding lone
    surrogates, which no decoded frame contains).
    """
    encoder = _ENCODERS.get(type(frame))
    if encoder is None:
        raise TypeError(f"not a protocol frame: {type(frame).__name__}")
    return encoder(frame)


_MESSAGE_EVENT_HEAD: Final = b'{"type":"message",'


def encode_send_ack(ref: str, room: str, seq: int, message_event: bytes) -> bytes:
    """The `ack` of a `send`, built from the stored message's encoded `message` event.

    Equal, byte for byte, to `encode(Ack(ref=ref, room=room, seq=seq, message=m))`
    when `message_event` is `encode(MessageEvent(message=m))` and `seq` is `m.seq`:
    the ack's `message` object is the event's fields without `type`
    (docs/protocol.md, "ack"), so they are copied rather than encoded again (the room
    has just encoded the event for its broadcast). `ref` and `room` are not checked:
    they come from a decoded `send`. Raises ValueError if `message_event` is not an
    encoded `message` event.
    """
    if not message_event.startswith(_MESSAGE_EVENT_HEAD):
        raise ValueError("not an encoded message event")
    message = orjson.Fragment(b"{" + message_event[len(_MESSAGE_EVENT_HEAD) :])
    return orjson.dumps({"type": "ack", "ref": ref, "room": room, "seq": seq, "message": message})


class _Invalid(Exception):
    """A decoding failure before the frame's `ref` is known; `_decode` adds it."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


_FAST_MAX_LEN: Final = MAX_FRAME_BYTES // 4
"""Frames of this length or less (bytes or code points) are within MAX_FRAME_BYTES."""
_UNPARSED: Final = object()
"""`_parse`'s `parsed` when the caller has not parsed the frame."""


def _decode(
    data: bytes | str,
    fast: Mapping[str, _FastDecoder[T]],
    decoders: Mapping[str, _Decoder[T]],
    direction: str,
) -> T:
    """`_decode_generic`'s result or error, with a fast path for the common frames.

    A frame the fast decoder of its type takes (`_fast_decoder`) is one
    `_decode_generic` would return equal, and it holds only scalars and empty
    arrays, so it is within MAX_DEPTH: the envelope checks before the fields'
    cannot refuse it. Anything else goes through `_decode_generic`, which
    gives the frame or the error.
    """
    value: Any = _UNPARSED
    if len(data) <= _FAST_MAX_LEN:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError:
            pass
        else:
            if (
                type(value) is dict
                and type(tag := value.get("type")) is str
                and (decoder := fast.get(tag)) is not None
                and (frame := decoder(value)) is not None
            ):
                return frame
    return _decode_generic(data, decoders, direction, value)


def _decode_generic(
    data: bytes | str,
    decoders: Mapping[str, _Decoder[T]],
    direction: str,
    parsed: Any = _UNPARSED,
) -> T:
    """Every check in the order `decode_client_frame` states; `parsed` is `orjson.loads(data)`
    if the caller has it already."""
    try:
        obj = _parse(data, parsed)
    except _Invalid as exc:
        raise ProtocolError(exc.code, exc.message) from None
    try:
        if "type" not in obj:
            raise _Invalid(ErrorCode.MISSING_FIELD, "type: required field is missing")
        tag = obj["type"]
        if type(tag) is not str:
            raise _wrong_type("type", "a string", tag)
        decoder = decoders.get(tag)
        if decoder is None:
            raise _Invalid(
                ErrorCode.UNKNOWN_TYPE, f"type: {shorten(tag)!r} is not a {direction} frame type"
            )
        return decoder(obj)
    except _Invalid as exc:
        # The frame's `ref`, if it is a valid one, is only needed for an error.
        ref = obj.get("ref")
        if not (_REF.type_ok(ref) and _REF.violation(ref) is None):
            ref = None
        raise ProtocolError(exc.code, exc.message, ref=ref) from None


def _parse(data: bytes | str, parsed: Any = _UNPARSED) -> dict[str, Any]:
    """Size, UTF-8, JSON, depth and object checks; returns the parsed object.

    `parsed`, if given, is `orjson.loads(data)` (of a frame within the size).
    """
    if parsed is not _UNPARSED:
        value = parsed
    elif len(data) > MAX_FRAME_BYTES or (
        # A code point takes at most 4 bytes, so only long strings need measuring.
        isinstance(data, str)
        and len(data) * 4 > MAX_FRAME_BYTES
        and len(data.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES
    ):
        raise _Invalid(ErrorCode.TOO_LARGE, f"frame is larger than {MAX_FRAME_BYTES} bytes")
    else:
        try:
            value = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise _parse_failure(data, exc) from None
    if (type(value) is dict or type(value) is list) and _too_deep(value):
        raise _too_deep_error()
    if type(value) is not dict:
        raise _Invalid(
            ErrorCode.NOT_AN_OBJECT,
            f"frame must be a JSON object, not {describe_json_value(value)}",
        )
    return value


def _parse_failure(data: bytes | str, exc: orjson.JSONDecodeError) -> _Invalid:
    try:
        if isinstance(data, str):
            data.encode("utf-8")
        else:
            data.decode("utf-8")
    except UnicodeError:
        return _Invalid(ErrorCode.INVALID_UTF8, "frame is not valid UTF-8")
    # orjson refuses documents nested deeper than 1024 levels before we can
    # measure them; they are too deep, not malformed (test_deeper_than_orjson_parses).
    if "depth limit" in str(exc) or "recursion limit" in str(exc).lower():
        return _too_deep_error()
    return _Invalid(ErrorCode.INVALID_JSON, f"frame is not valid JSON: {shorten(str(exc), 200)}")


def _too_deep(value: dict[str, Any] | list[Any]) -> bool:
    """Whether `value` nests deeper than MAX_DEPTH; iterative, and only containers are pushed."""
    stack: list[tuple[dict[str, Any] | list[Any], int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        for child in node.values() if type(node) is dict else node:
            if type(child) is dict or type(child) is list:
                if depth == MAX_DEPTH:
                    return True
                stack.append((child, depth + 1))
    return False


def _too_deep_error() -> _Invalid:
    return _Invalid(ErrorCode.TOO_DEEP, f"frame nests deeper than {MAX_DEPTH} levels")


def describe_json_value(value: object) -> str:
    """The JSON type of a decoded value as English ("a string", "null"), for error messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "a boolean"
        case int():
            return "an integer"
        case float():
            return "a number"
        case str():
            return "a string"
        case list():
            return "an array"
        case _:
            return "an object"


def _wrong_type(path: str, expected: str, value: object) -> _Invalid:
    return _Invalid(
        ErrorCode.WRONG_TYPE, f"{path}: expected {expected}, got {describe_json_value(value)}"
    )


def _object_decoder(cls: type[T], path: str, *, tagged: bool) -> _Decoder[T]:
    """A function that turns a parsed JSON object into an instance of the attrs class `cls`.

    `path` prefixes field names in messages; `tagged` objects may hold a `type` key.
    """
    if (flat := flattened(cls)) is not None:
        name, inner = flat[0], _object_decoder(flat[1], path, tagged=tagged)
        return lambda obj: cls(**{name: inner(obj)})
    specs = field_specs(cls)
    allowed = frozenset(field.name for field, _ in specs) | ({"type"} if tagged else set())
    required = tuple(field.name for field, _ in specs if field.default is attrs.NOTHING)
    required_set = frozenset(required)
    steps = tuple(
        (field.name, _structurer(spec, f"{path}.{field.name}", spec.expected))
        for field, spec in specs
    )

    def decode(obj: dict[str, Any]) -> T:
        # The set operations run in C; the loops only run to name the culprit.
        if not allowed.issuperset(obj):
            key = next(key for key in obj if key not in allowed)
            raise _Invalid(ErrorCode.EXTRA_FIELD, f"{path}: unknown field {shorten(key)!r}")
        if not obj.keys() >= required_set:
            name = next(name for name in required if name not in obj)
            raise _Invalid(ErrorCode.MISSING_FIELD, f"{path}.{name}: required field is missing")
        kwargs = {name: structure(obj[name]) for name, structure in steps if name in obj}
        try:
            return cls(**kwargs)
        except ConstraintViolation as exc:
            raise _Invalid(ErrorCode.INVALID_VALUE, f"{path}.{exc.field}: {exc.reason}") from None

    return decode


def _structurer(spec: Spec, path: str, expected: str) -> _Structure:
    """A function that checks one field's JSON type and returns its Python value.

    Limits are left to the frame class's validators, which run on construction.
    """
    match spec:
        case NullableSpec(inner=inner):
            structure = _structurer(inner, path, expected)
            return lambda value: None if value is None else structure(value)
        case ObjectSpec(cls=cls):
            decode = _object_decoder(cls, path, tagged=False)

            def structure_object(value: Any) -> Any:
                if type(value) is not dict:
                    raise _wrong_type(path, expected, value)
                return decode(value)

            return structure_object
        case ListSpec(cls=cls):
            decode_item = _object_decoder(cls, f"{path}[]", tagged=False)

            def structure_list(value: Any) -> Any:
                if type(value) is not list:
                    raise _wrong_type(path, expected, value)
                for item in value:
                    if type(item) is not dict:
                        raise _wrong_type(f"{path}[]", "an object", item)
                return tuple(decode_item(item) for item in value)

            return structure_list
        case StrListSpec():

            def structure_strings(value: Any) -> Any:
                if type(value) is not list:
                    raise _wrong_type(path, expected, value)
                for item in value:
                    if type(item) is not str:
                        raise _wrong_type(f"{path}[]", "a string", item)
                return tuple(value)

            return structure_strings
        case MapSpec(value=value_spec):

            def structure_map(value: Any) -> Any:
                if type(value) is not dict:
                    raise _wrong_type(path, expected, value)
                for key, item in value.items():
                    if not value_spec.type_ok(item):
                        raise _wrong_type(f"{path}[{shorten(key)!r}]", value_spec.expected, item)
                return value

            return structure_map
        case ChoiceSpec(members=members) if members:

            def structure_member(value: Any) -> Any:
                if type(value) is not str:
                    raise _wrong_type(path, expected, value)
                # An unknown value stays a str for the validator to reject.
                return members.get(value, value)

            return structure_member
        case StrSpec() | ChoiceSpec():

            def structure_str(value: Any) -> Any:
                if type(value) is not str:
                    raise _wrong_type(path, expected, value)
                return value

            return structure_str
        case IntSpec():

            def structure_int(value: Any) -> Any:
                if type(value) is not int:
                    raise _wrong_type(path, expected, value)
                return value

            return structure_int
        case BoolSpec():

            def structure_bool(value: Any) -> Any:
                if type(value) is not bool:
                    raise _wrong_type(path, expected, value)
                return value

            return structure_bool


def _compile_encoder(cls: type[Any]) -> Callable[[Any], bytes]:
    """Generate `encode` for one frame class: a single dict display passed to orjson.

    The `message` event is encoded once per broadcast on the hot path; this
    is about 1.6x faster than unstructuring with cattrs then adding `type`
    (0.58 vs 0.94 µs for a typical message, measured on the dev machine).
    Field names are attrs-checked identifiers and the tag is written with
    repr, so the generated source is safe.
    """
    lines = ["def encode(frame):"]
    if (flat := flattened(cls)) is not None:
        lines.append(f"    obj = frame.{flat[0]}")
        items = _dict_items(flat[1], "obj", 0)
    else:
        items = _dict_items(cls, "frame", 0)
    lines.append(f"    return dumps({{'type': {cls.TYPE!r}, {', '.join(items)}}})")
    namespace: dict[str, Any] = {"dumps": orjson.dumps}
    exec("\n".join(lines), namespace)
    encoder: Callable[[Any], bytes] = namespace["encode"]
    return encoder


def _compile_flat_encoder(cls: type[Any]) -> Callable[..., bytes]:
    """Generate, for a frame class whose one field is flattened (`MessageEvent`), a function
    from the nested object's fields straight to the frame's bytes, building no instance.

    Its keyword arguments are the nested class's fields, each required. It runs the
    check that class's instances are validated with (`check_condition`, the same
    expression); for values the expression refuses, it builds the instance, which raises
    what constructing it raises (or, where the expression is stricter than the specs,
    lets them through). Then it writes the dict display of `_compile_encoder`, over the
    arguments. So its bytes and errors are those of `encode(cls(inner(**fields)))`.
    Field names are attrs-checked identifiers, and those the generated code uses for
    itself are refused, so the generated source is safe.
    """
    flat = flattened(cls)
    if flat is None:
        raise TypeError(f"{cls.__name__} has no flattened field")
    nested = flat[1]
    if hasattr(nested, "__attrs_post_init__"):
        # A rule across fields would not run here.
        raise TypeError(f"{nested.__name__} has checks beyond its fields' specs")
    specs = tuple((field.name, spec) for field, spec in field_specs(nested))
    names = [name for name, _ in specs]
    namespace: dict[str, Any] = {"dumps": orjson.dumps, "build": nested}
    condition = check_condition(specs, names, namespace)
    if any(name in namespace or re.fullmatch(r"(item|nested)\d+", name) for name in names):
        raise TypeError(f"{nested.__name__}: a field name clashes with the generated code")
    arguments = ", ".join(f"{name}={name}" for name in names)
    items = ", ".join(_dict_items(nested, None, 0))
    source = "\n".join(
        [
            f"def encode(*, {', '.join(names)}):",
            f"    if not ({condition}):",
            f"        build({arguments})",
            f"    return dumps({{'type': {cls.TYPE!r}, {items}}})",
        ]
    )
    exec(compile(source, f"<encoder of {cls.__name__} fields>", "exec"), namespace)
    encoder: Callable[..., bytes] = namespace["encode"]
    return encoder


def _dict_items(cls: type[Any], var: str | None, level: int) -> list[str]:
    """Source of the `'name': value` items of a dict display for the instance in `var`
    (for None: of the local variables named after its fields)."""
    items = []
    for field, spec in field_specs(cls):
        access = field.name if var is None else f"{var}.{field.name}"
        match spec:
            case ObjectSpec(cls=nested):
                value = "{" + ", ".join(_dict_items(nested, access, level + 1)) + "}"
            case ListSpec(cls=nested):
                bound = f"item{level}"
                body = ", ".join(_dict_items(nested, bound, level + 1))
                # Mostly empty (a message's attachments): no comprehension, a call in 3.11.
                value = f"([{{{body}}} for {bound} in {access}] if {access} else [])"
            case NullableSpec(inner=ObjectSpec(cls=nested)):
                bound = f"nested{level}"
                body = ", ".join(_dict_items(nested, bound, level + 1))
                value = f"(None if ({bound} := {access}) is None else {{{body}}})"
            case _:
                value = access
        items.append(f"{field.name!r}: {value}")
    return items


_ABSENT: Final = object()
"""What the fast decoders read for a missing optional field they have no simple default for."""


def _fast_decoder(cls: type[T]) -> _FastDecoder[T] | None:
    """A decoder of the tagged frame class `cls` that returns None for any frame it does not
    take, and for one it takes, a frame equal to the one `_object_decoder` would return.

    It is one generated expression over the frame's JSON values: the same
    key checks, then for each field its JSON type and the same limits as
    `cls`'s own check (`condition`, which `compile_check` uses too), and the
    rule across fields. When it holds, the checks of `cls` would pass on
    these values, so the frame is built without running them again:
    `object.__new__` and each field's slot set (what attrs' `__init__`
    does, without its per-field lookups). Any value it does not take as is
    (an object, a non-empty array, an enum) makes it return None, so the
    generic decoder, which gives every error, decides: the expression decides
    speed, never the outcome (tests/protocol/test_codec.py compares the two
    on generated frames).

    A field whose JSON value needs structuring is taken only when absent,
    or null or an empty array where that decodes to its default, so a frame
    taken holds only scalars and empty arrays. None for a class with no fast
    path: a flattened one, one with a required field of that kind, or one
    whose construction does more than set its slots and run its checks.
    """
    if flattened(cls) is not None or getattr(cls, "__attrs_pre_init__", None) is not None:
        return None
    post_init = getattr(cls, "__attrs_post_init__", None)
    if post_init is not None and post_init is not check_nonempty_one_of:
        return None
    specs = field_specs(cls)
    slots = [getattr(cls, field.name, None) for field, _ in specs]
    if any(field.converter is not None or not field.init for field, _ in specs):
        return None
    setters = [slot.__set__ for slot in slots if isinstance(slot, types.MemberDescriptorType)]
    if len(setters) != len(specs):
        return None
    names = [field.name for field, _ in specs]
    namespace: dict[str, Any] = {
        "allowed": frozenset(names) | {"type"},
        "required": frozenset(field.name for field, _ in specs if field.default is attrs.NOTHING),
        "new": object.__new__,
        "cls": cls,
        "absent": _ABSENT,
    }
    loads, terms, values = [], [], []
    for index, (field, spec) in enumerate(specs):
        var, default = f"v{index}", field.default
        namespace[f"set{index}"] = setters[index]
        simple = _simple(spec)
        if default is attrs.NOTHING:
            if not simple:
                return None
            loads.append(f"{var} = obj[{field.name!r}]")
        elif isinstance(default, attrs.Factory) or not (  # type: ignore[arg-type]
            spec.type_ok(default) and spec.violation(default) is None
        ):
            return None
        elif simple:
            namespace[f"d{index}"] = default
            loads.append(f"{var} = obj.get({field.name!r}, d{index})")
        else:
            namespace[f"d{index}"] = default
            loads.append(f"{var} = obj.get({field.name!r}, absent)")
            forms = [f"{var} is absent"]
            if default is None:
                forms.append(f"{var} is None")
            if default == () and isinstance(spec, ListSpec | StrListSpec):
                forms.append(f"(type({var}) is list and not {var})")
            terms.append(f"({' or '.join(forms)})")
            values.append(f"d{index}")
            continue
        terms.append(condition(spec, var, f"c{index}", namespace, exact=True))
        values.append(var)
    if post_init is not None:
        by_name = dict(zip(names, values, strict=True))
        nonempty: tuple[str, ...] = cls.NONEMPTY_ONE_OF  # type: ignore[attr-defined]
        terms.append(f"({' or '.join(by_name[name] for name in nonempty)})")
    source = "\n".join(
        [
            "def decode(obj):",
            "    if not (allowed.issuperset(obj) and obj.keys() >= required):",
            "        return None",
            *(f"    {load}" for load in loads),
            f"    if not ({' and '.join(terms) or 'True'}):",
            "        return None",
            "    frame = new(cls)",
            *(f"    set{index}(frame, {value})" for index, value in enumerate(values)),
            "    return frame",
        ]
    )
    # Named after the class in tracebacks and profiles.
    exec(compile(source, f"<fast decoder of {cls.__name__}>", "exec"), namespace)
    decode: _FastDecoder[T] = namespace["decode"]
    return decode


def _simple(spec: Spec) -> bool:
    """Whether a JSON value of the field's type is the field's value as it is (no structuring)."""
    match spec:
        case StrSpec() | IntSpec() | BoolSpec():
            return True
        case ChoiceSpec(members=members):
            return not members  # an enum's value becomes its member
        case NullableSpec(inner=inner):
            return _simple(inner)
    return False


def _decoders(union: Any) -> dict[str, _Decoder[Any]]:
    return {cls.TYPE: _object_decoder(cls, cls.TYPE, tagged=True) for cls in typing.get_args(union)}


def _fast_decoders(union: Any) -> dict[str, _FastDecoder[Any]]:
    """The fast decoder of each frame type, generated when a frame of the type first comes.

    Compiling them all at import would cost every process that imports the
    protocol ~40 million instructions (mostly `compile`), for the few types
    it decodes. A type without a fast path gets one that takes nothing.
    """
    fast: dict[str, _FastDecoder[Any]] = {}

    def on_first_use(cls: type[Any]) -> _FastDecoder[Any]:
        def first_use(obj: dict[str, Any]) -> Any:
            decoder = fast[cls.TYPE] = _fast_decoder(cls) or _takes_nothing
            return decoder(obj)

        return first_use

    for cls in typing.get_args(union):
        fast[cls.TYPE] = on_first_use(cls)
    return fast


def _takes_nothing(obj: dict[str, Any]) -> None:
    """The fast decoder of a frame type without a fast path."""


_CLIENT_DECODERS: Final[Mapping[str, _Decoder[ClientFrame]]] = _decoders(ClientFrame)
_SERVER_DECODERS: Final[Mapping[str, _Decoder[ServerFrame]]] = _decoders(ServerFrame)
_CLIENT_FAST: Final[Mapping[str, _FastDecoder[ClientFrame]]] = _fast_decoders(ClientFrame)
_SERVER_FAST: Final[Mapping[str, _FastDecoder[ServerFrame]]] = _fast_decoders(ServerFrame)
_ENCODERS: Final[Mapping[type, Callable[[Any], bytes]]] = {
    cls: _compile_encoder(cls) for cls in typing.get_args(Frame)
}

encode_message_event: Final = _compile_flat_encoder(MessageEvent)
"""`encode_message_event(**fields)` is `encode(MessageEvent(message=Message(**fields)))`:
the same bytes, and the same errors (the `Message`'s checks), without building either
instance. Every field of `Message` must be given, defaults included. For the room's hot
path, where a stored message becomes the event it broadcasts."""
