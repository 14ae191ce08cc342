"""Server settings an admin may change while nodes run (issue #14): declared in
`RuntimeValues`, stored in the store, applied by `LiveSettings` on every node."""

from ._declared import DECLARATIONS as DECLARATIONS
from ._declared import Bounds as Bounds
from ._declared import Declaration as Declaration
from ._declared import RuntimeValues as RuntimeValues
from ._declared import check as check
from ._declared import declaration as declaration
from ._declared import parse as parse
from ._live import SETTINGS_TOPIC as SETTINGS_TOPIC
from ._live import LiveSettings as LiveSettings
from ._live import SettingChange as SettingChange
from ._live import SettingState as SettingState
from ._live import Value as Value
from ._live import check_updates as check_updates
from ._live import store_updates as store_updates
