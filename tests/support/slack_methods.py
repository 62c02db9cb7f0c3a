"""The few facts the tests take from Slack's Web API description, and how to make them.

The fake Slack checks each call's required parameters. They come from Slack's own
OpenAPI description (`../shared/slack/`), derived once into `slack_methods.json` so a
clone with nothing beside it runs every test. After the bot calls a new method, run

    python -m tests.support.slack_methods

to write the file again from the description (needs `../shared/slack/`, or SHARED_DIR).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DERIVED = Path(__file__).with_name("slack_methods.json")
OPENAPI = Path("slack") / "slack_web_openapi_v2_without_examples.json"

# Methods newer than the (2021) OpenAPI file: their required parameters (but the token)
# are written here by hand, from Slack's method pages.
NEWER_METHODS: dict[str, list[str]] = {"apps.connections.open": []}
# `client.chat_postMessage(` in the bot's code, `def _chat_postMessage(` in the fake.
WEB_API_CALL = re.compile(r"[._]((?:apps|auth|chat|conversations|users|views)_[A-Za-z]+)\(")


def shared_dir() -> Path:
    """../shared next to the repository, or SHARED_DIR."""
    return Path(os.environ.get("SHARED_DIR") or REPO.parent / "shared")


def methods_used() -> set[str]:
    """The Web API methods the bot calls and the fake answers, as `chat.postMessage`."""
    sources = [*(REPO / "bot").rglob("*.py"), Path(__file__).with_name("fake_slack.py")]
    return {
        name.replace("_", ".", 1) for path in sources for name in WEB_API_CALL.findall(path.read_text(encoding="utf-8"))
    }


def derive(openapi: Path) -> dict[str, list[str]]:
    """Each used method's required parameters (but the token), from the OpenAPI file."""
    spec = json.loads(openapi.read_text(encoding="utf-8"))
    used = methods_used()
    methods = {
        path.lstrip("/"): sorted(
            {
                parameter["name"]
                for operation in operations.values()
                for parameter in operation.get("parameters", [])
                if parameter.get("required") and parameter["name"] != "token"
            }
        )
        for path, operations in spec["paths"].items()
        if path.lstrip("/") in used
    }
    return dict(sorted({**NEWER_METHODS, **methods}.items()))


def load() -> dict[str, frozenset[str]]:
    """The committed facts: method -> required parameters."""
    return {method: frozenset(names) for method, names in json.loads(DERIVED.read_text()).items()}


def render(methods: dict[str, list[str]]) -> str:
    return json.dumps(methods, indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    DERIVED.write_text(render(derive(shared_dir() / OPENAPI)))
    print(f"wrote {DERIVED.relative_to(REPO)}")
