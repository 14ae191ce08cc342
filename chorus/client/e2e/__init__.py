"""End-to-end encryption for the SDK (docs/e2e.md): Olm and Megolm through vodozemac.

`CryptoMachine` holds one device's keys and sessions (pure state), `KeyStore`
seals it in a passphrase-protected file, and `E2EClient` drives both over a
`HttpApi` and a `RealtimeClient`. Files sent to encrypted rooms are
`EncryptedFile`s: encrypted before upload, their keys in the message.
"""

from ._attachments import EncryptedFile as EncryptedFile
from ._attachments import FileTampered as FileTampered
from ._client import DeviceStatus as DeviceStatus
from ._client import E2EClient as E2EClient
from ._client import E2EProblem as E2EProblem
from ._client import Secured as Secured
from ._devices import Device as Device
from ._devices import Trust as Trust
from ._keystore import KeyStore as KeyStore
from ._keystore import KeyStoreError as KeyStoreError
from ._machine import CryptoMachine as CryptoMachine
from ._machine import Decrypted as Decrypted
from ._machine import DecryptionError as DecryptionError
from ._machine import RotationPolicy as RotationPolicy
from ._machine import ToDevice as ToDevice
from ._verification import VerificationCode as VerificationCode
