"""chorus-js, the JavaScript SDK: its `node --test` suite against real `chorus serve`
processes, its quick start from docs/js-sdk.md, and its JSDoc types (`tsc --checkJs`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import trio

import chorus
from tests.cluster.nodes import NodeProcess, start_node

PACKAGE = Path(chorus.__file__).parent / "web" / "chorus-js"
JS_SDK_MD = Path(__file__).parents[2] / "docs" / "js-sdk.md"
NODE = shutil.which("node")
ENV = {
    "CHORUS_SCANNER": "none",
    "CHORUS_STORAGE": "local",
    # Many users sign up during the suite, all from 127.0.0.1.
    "CHORUS_AUTH_ATTEMPTS_PER_MINUTE": "10000",
    # Small enough for the rate-limit test to hit it (the SDK retries refused sends).
    "CHORUS_SEND_BURST": "5",
    "CHORUS_SENDS_PER_SECOND": "5",
    # Small enough for a resume to be too far (caught up over HTTP) and for pings to
    # be seen within a test.
    "CHORUS_RESUME_LIMIT": "6",
    "CHORUS_HEARTBEAT_INTERVAL": "2",
}
LIMITED_ENV = ENV | {"CHORUS_AUTH_ATTEMPTS_PER_MINUTE": "20"}
SUITE_TIMEOUT = 300


def node_binary() -> str:
    if NODE is None:
        pytest.fail("node (Node.js 20+) is not installed: scripts/test needs it for chorus-js")
    return NODE


async def run(argv: list[str], *, cwd: Path, env: dict[str, str]) -> tuple[int, str]:
    """Run a command to its end (bounded); its status and its output (stdout and stderr)."""
    with trio.fail_after(SUITE_TIMEOUT):
        done = await trio.run_process(
            argv,
            cwd=cwd,
            env={**os.environ, **env},
            capture_stdout=True,
            stderr=subprocess.STDOUT,  # one stream, in order
            check=False,
        )
    return done.returncode, done.stdout.decode(errors="replace")


def suite_files() -> list[str]:
    files = sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.glob("test/*.test.js"))
    assert files, f"no tests in {PACKAGE / 'test'}"
    return files


async def serve(tmp_path: Path, name: str, env: dict[str, str]) -> NodeProcess:
    data_dir = tmp_path / name
    data_dir.mkdir()
    return await start_node(name, data_dir, env)


async def test_the_sdk_suite_passes_against_real_servers(tmp_path: Path) -> None:
    main = await serve(tmp_path, "main", ENV)
    try:
        limited = await serve(tmp_path, "limited", LIMITED_ENV)
        try:
            status, output = await run(
                [node_binary(), "--experimental-websocket", "--test", *suite_files()],
                cwd=PACKAGE,
                env={
                    "CHORUS_URL": f"http://127.0.0.1:{main.http_port}",
                    "CHORUS_LIMITED_URL": f"http://127.0.0.1:{limited.http_port}",
                },
            )
        finally:
            await limited.stop()
    finally:
        await main.stop()
    print(output)  # shown by pytest on failure (-rA shows it always)
    assert status == 0, f"node --test failed:\n{output}\n--- server log ---\n{main.log()[-4000:]}"
    assert re.search(r"^# fail 0$", output, re.MULTILINE), output
    passed = re.search(r"^# pass (\d+)$", output, re.MULTILINE)
    assert passed is not None, output
    assert int(passed.group(1)) >= 20, output


def quick_start() -> str:
    """The Node quick start of docs/js-sdk.md (the block after its marker comment)."""
    text = JS_SDK_MD.read_text()
    found = re.search(r"<!-- quick-start:node -->\s*```js\n(.*?)```", text, re.DOTALL)
    assert found is not None, "docs/js-sdk.md lost its quick-start:node block"
    return found.group(1)


async def test_the_quick_start_of_the_docs_runs(tmp_path: Path) -> None:
    # Installed as a package would be: `import ... from 'chorus-js'` resolves through
    # node_modules to the package's `exports`.
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "chorus-js").symlink_to(PACKAGE)
    script = tmp_path / "quickstart.mjs"
    script.write_text(quick_start())
    node = await serve(tmp_path, "node", ENV)
    try:
        status, output = await run(
            [node_binary(), "--experimental-websocket", str(script)],
            cwd=tmp_path,
            env={"CHORUS_URL": f"http://127.0.0.1:{node.http_port}"},
        )
    finally:
        await node.stop()
    assert status == 0, output
    assert "Ada: Hello from chorus-js! (seq 1)" in output, output


async def test_the_jsdoc_types_check() -> None:
    node_binary()
    npx = shutil.which("npx")
    installed = (PACKAGE / "node_modules" / ".bin" / "tsc").exists()
    if npx is None or not installed:
        pytest.fail(
            f"TypeScript is not installed: run `npm ci --prefix {PACKAGE}` (scripts/test does)"
        )
    # --no: the package's own TypeScript (the locked devDependency), never a download.
    status, output = await run(
        [npx, "--no", "--", "tsc", "-p", "jsconfig.json"], cwd=PACKAGE, env={}
    )
    assert status == 0, f"tsc --checkJs found errors:\n{output}"


CONSUMER_TS = """\
import { HttpApi, RealtimeClient, type Message } from 'chorus-js';

const api = new HttpApi('http://127.0.0.1:8080');
const client = new RealtimeClient(api, { maxBackoffMs: 1000 });
client.on('message', (event) => console.log(event.body.length, event.seq + 1));
export async function greet(): Promise<Message> {
  const onProgress = (sent: number, total: number) => console.log(sent / total);
  await api.uploadFile(new Blob(['x']), { name: 'x.txt', onProgress });
  client.reconnectNow();
  // @ts-expect-error: a room id is a string (were the types `any`, this would be unused)
  return client.send(42, 'hello');
}
"""
CONSUMER_TSCONFIG = """\
{"compilerOptions": {"strict": true, "noEmit": true, "module": "NodeNext",
  "moduleResolution": "NodeNext", "target": "ES2022", "lib": ["ES2022", "DOM"], "types": []},
 "files": ["consumer.mts"]}
"""


async def test_the_committed_declarations_are_current_and_typescript_can_use_them(
    tmp_path: Path,
) -> None:
    tsc = PACKAGE / "node_modules" / "typescript" / "bin" / "tsc"
    if not tsc.exists():
        pytest.fail(
            f"TypeScript is not installed: run `npm ci --prefix {PACKAGE}` (scripts/test does)"
        )
    fresh = tmp_path / "types"
    argv = [node_binary(), str(tsc), "-p", "tsconfig.types.json", "--outDir", str(fresh)]
    status, output = await run(argv, cwd=PACKAGE, env={})
    assert status == 0, output
    committed = PACKAGE / "types"
    names = sorted(path.name for path in fresh.glob("*.d.ts"))
    assert names == sorted(path.name for path in committed.glob("*.d.ts")), (
        "types/ is not current: run `npm run types` in chorus/web/chorus-js"
    )
    for name in names:
        assert (fresh / name).read_text() == (committed / name).read_text(), (
            f"types/{name} is not current: run `npm run types` in chorus/web/chorus-js"
        )
    # A TypeScript project (no allowJs) importing the package gets real types.
    consumer = tmp_path / "consumer"
    (consumer / "node_modules").mkdir(parents=True)
    (consumer / "node_modules" / "chorus-js").symlink_to(PACKAGE)
    (consumer / "consumer.mts").write_text(CONSUMER_TS)
    (consumer / "tsconfig.json").write_text(CONSUMER_TSCONFIG)
    status, output = await run(
        [node_binary(), str(tsc), "-p", "tsconfig.json"], cwd=consumer, env={}
    )
    assert status == 0, f"a TypeScript consumer does not type-check:\n{output}"
