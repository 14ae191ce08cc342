"""The bot swarm load tester behind `chorus bots` (see docs/benchmarks.md).

`provision_node` writes bot users, rooms and tokens into a node's store;
`run_swarm` drives them from worker processes and returns the merged report;
`failures` judges it; `remove_node_bots` removes a run's bots again.
"""

from ._command import run_bots_command as run_bots_command
from ._histogram import merge_encoded as merge_encoded
from ._histogram import new_histogram as new_histogram
from ._histogram import summary_ms as summary_ms
from ._limits import raise_open_files_limit as raise_open_files_limit
from ._provision import BotAccount as BotAccount
from ._provision import Provisioned as Provisioned
from ._provision import check_run_id as check_run_id
from ._provision import provision as provision
from ._provision import provision_node as provision_node
from ._provision import remove_node_bots as remove_node_bots
from ._report import JSON_KEYS as JSON_KEYS
from ._report import html_report as html_report
from ._swarm import SwarmOptions as SwarmOptions
from ._swarm import failures as failures
from ._swarm import run_swarm as run_swarm
from ._wire import FrameReader as FrameReader
from ._wire import client_frame as client_frame
