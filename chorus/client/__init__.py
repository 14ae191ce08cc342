"""The Python SDK: `HttpApi` for the REST API and `RealtimeClient` for the gateway.

async with HttpApi("http://127.0.0.1:8080") as api:
    await api.login("ada", "correct horse battery staple")
    client = RealtimeClient(api)
    async with trio.open_nursery() as nursery:
        await nursery.start(client.run)
        await client.join(room_id)
        await client.send(room_id, "hello")
        async for event in client.events:
            ...

Files: `client.send_file(room_id, path, caption=...)` in one call, or in steps
`api.upload_file(path, progress=...)`, then `client.wait_for_file(id)` (or
`api.wait_for_file(id)` without a connection), `client.send(..., attachments=[id])`;
`api.download_file(id, dest)`.

End-to-end encryption: `RealtimeClient(api, e2e=await E2EClient.open(api, key_file,
passphrase))` (`chorus.client.e2e`, docs/e2e.md) encrypts and opens encrypted rooms,
files included (`send_file` encrypts them; `e2e.download_file` checks and decrypts).
"""

from ._files import CHUNK_BYTES as CHUNK_BYTES
from ._files import FileRejected as FileRejected
from ._files import FileSource as FileSource
from ._files import Progress as Progress
from ._files import Variant as Variant
from ._http import ApiError as ApiError
from ._http import HttpApi as HttpApi
from ._http import RoomEvent as RoomEvent
from ._http import TwoFactorRequired as TwoFactorRequired
from ._models import Invitation as Invitation
from ._models import Room as Room
from ._models import Session as Session
from ._models import SessionInfo as SessionInfo
from ._models import TwoFactorEnrolment as TwoFactorEnrolment
from ._models import TwoFactorState as TwoFactorState
from ._models import User as User
from ._realtime import ConnectionLost as ConnectionLost
from ._realtime import Event as Event
from ._realtime import RealtimeClient as RealtimeClient
from ._realtime import Reconnected as Reconnected
from ._realtime import RoomFound as RoomFound
