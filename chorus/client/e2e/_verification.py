"""What two people compare to verify a device: emoji and a safety number.

Derivation (docs/e2e.md, client section): the two devices are ordered by
`(user_id, device_id)`; the input keying material is the first device's
Ed25519 public key bytes followed by the second's; HKDF-SHA256 (RFC 5869,
from `cryptography`) with no salt and the info string
`CHORUS_E2E_VERIFY_V1|user1|device1|user2|device2` expands it to 66 bytes.
The first 42 bits, in 6-bit groups, index the 64-emoji table of the Matrix
SAS specification (7 emoji, as Matrix's SAS does with its HKDF output); the
last 60 bytes, as twelve 5-byte big-endian integers each taken modulo
100,000 (Signal's safety-number encoding), give twelve 5-digit groups. Both
sides compute the same strings; any other key on either side changes them.
"""

from __future__ import annotations

import attrs
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from ._wire import b64decode

# The Matrix specification's SAS emoji table (index: emoji, name), so users of
# Matrix clients meet familiar pictures.
EMOJI = (
    ("🐶", "Dog"), ("🐱", "Cat"), ("🦁", "Lion"), ("🐎", "Horse"), ("🦄", "Unicorn"),
    ("🐷", "Pig"), ("🐘", "Elephant"), ("🐰", "Rabbit"), ("🐼", "Panda"), ("🐓", "Rooster"),
    ("🐧", "Penguin"), ("🐢", "Turtle"), ("🐟", "Fish"), ("🐙", "Octopus"),
    ("🦋", "Butterfly"), ("🌷", "Flower"), ("🌳", "Tree"), ("🌵", "Cactus"),
    ("🍄", "Mushroom"), ("🌏", "Globe"), ("🌙", "Moon"), ("☁️", "Cloud"), ("🔥", "Fire"),
    ("🍌", "Banana"), ("🍎", "Apple"), ("🍓", "Strawberry"), ("🌽", "Corn"), ("🍕", "Pizza"),
    ("🎂", "Cake"), ("❤️", "Heart"), ("😀", "Smiley"), ("🤖", "Robot"), ("🎩", "Hat"),
    ("👓", "Glasses"), ("🔧", "Spanner"), ("🎅", "Santa"), ("👍", "Thumbs Up"),
    ("☂️", "Umbrella"), ("⌛", "Hourglass"), ("⏰", "Clock"), ("🎁", "Gift"),
    ("💡", "Light Bulb"), ("📕", "Book"), ("✏️", "Pencil"), ("📎", "Paperclip"),
    ("✂️", "Scissors"), ("🔒", "Lock"), ("🔑", "Key"), ("🔨", "Hammer"), ("☎️", "Telephone"),
    ("🏁", "Flag"), ("🚂", "Train"), ("🚲", "Bicycle"), ("✈️", "Aeroplane"), ("🚀", "Rocket"),
    ("🏆", "Trophy"), ("⚽", "Ball"), ("🎸", "Guitar"), ("🎺", "Trumpet"), ("🔔", "Bell"),
    ("⚓", "Anchor"), ("🎧", "Headphones"), ("📁", "Folder"), ("📌", "Pin"),
)  # fmt: skip


@attrs.frozen
class VerificationCode:
    """The strings two people compare; equal on both sides iff both see the same keys."""

    emoji: tuple[tuple[str, str], ...]
    """Seven (emoji, name) pairs: 42 bits, quick to compare aloud."""
    safety_number: str
    """Twelve groups of five digits (about 199 bits): the thorough comparison."""

    def emoji_line(self) -> str:
        return "  ".join(f"{symbol} {name}" for symbol, name in self.emoji)


def verification_code(own: tuple[str, str, str], other: tuple[str, str, str]) -> VerificationCode:
    """The code for two devices, each `(user_id, device_id, ed25519 base64)`."""
    first, second = sorted((own, other))
    info = "|".join(("CHORUS_E2E_VERIFY_V1", first[0], first[1], second[0], second[1]))
    material = b64decode(first[2]) + b64decode(second[2])
    hkdf = HKDF(algorithm=hashes.SHA256(), length=66, salt=None, info=info.encode())
    okm = hkdf.derive(material)
    head = int.from_bytes(okm[:6], "big")
    emoji = tuple(EMOJI[(head >> (48 - 6 * (i + 1))) & 0x3F] for i in range(7))
    groups = (int.from_bytes(okm[i : i + 5], "big") % 100_000 for i in range(6, 66, 5))
    return VerificationCode(emoji=emoji, safety_number=" ".join(f"{g:05d}" for g in groups))
