"""Second reference for the chat-template fixtures: Python's jinja2 set up the way transformers' apply_chat_template
sets it up (sandboxed, trim_blocks, lstrip_blocks, loop controls, its own tojson, raise_exception, strftime_now).
Adds a "jinja2" result next to transformers.js's in features.json and expected.json (run by
make-template-fixtures.sh after the node script). The clock is fixed at 2025-03-14 15:09:26."""
import json
import sys
from datetime import datetime
from pathlib import Path

from jinja2 import TemplateError
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXED = datetime(2025, 3, 14, 15, 9, 26)


def make_env():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def raise_exception(message):
        raise TemplateError(message)

    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: FIXED.strftime(fmt)
    return env


def render(env, template, variables):
    try:
        return {"text": env.from_string(template).render(**variables)}
    except Exception as e:  # the reference's own error, kept as text
        return {"error": f"{type(e).__name__}: {e}"}


def token(value):
    return value.get("content") if isinstance(value, dict) else value


def main(folder):
    folder = Path(folder)
    env = make_env()
    features = json.loads((folder / "features.json").read_text(encoding="utf-8"))
    for case in features:
        case["jinja2"] = render(env, case["template"], case["vars"])
    (folder / "features.json").write_text(json.dumps(features, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    conversations = json.loads((folder / "conversations.json").read_text(encoding="utf-8"))
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    for family, results in expected.items():
        config = json.loads((folder / family / "tokenizer_config.json").read_text(encoding="utf-8"))
        special = {k: token(config[k]) for k in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token",
                                                 "cls_token", "mask_token") if config.get(k)}
        for conversation in conversations:
            c = dict(conversation)
            name, messages = c.pop("name"), c.pop("messages")
            variables = {"messages": messages, "tools": c.pop("tools", None), "documents": c.pop("documents", None),
                         "add_generation_prompt": c.pop("add_generation_prompt", False), **special, **c}
            template = config["chat_template"]
            if isinstance(template, list):
                named = {t["name"]: t["template"] for t in template}
                template = named["tool_use"] if variables["tools"] is not None and "tool_use" in named else named["default"]
            results[name]["jinja2"] = render(env, template, variables)
    (folder / "expected.json").write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(sys.argv[1])
