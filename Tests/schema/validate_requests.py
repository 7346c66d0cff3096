#!/usr/bin/env python3
"""Validates every request body the tests recorded against the official OpenAI schemas: Chat
Completions bodies (NAME.json) against CreateChatCompletionRequest, Responses bodies
(NAME.responses.json) against CreateResponse.

usage: validate_requests.py CHAT_SCHEMA.json RESPONSES_SCHEMA.json DIR [DIR ...]
Fails when a body is invalid, or when no body of either kind was recorded (a check that saw
nothing proves nothing).
"""
import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource


def validator(schema_path, definition):
    schema = json.loads(pathlib.Path(schema_path).read_text())
    registry = Registry().with_resource("urn:openai", Resource.from_contents(schema))
    return jsonschema.Draft202012Validator({"$ref": f"urn:openai#/$defs/{definition}"}, registry=registry)


def main() -> int:
    chat_path, responses_path, *dirs = sys.argv[1:]
    kinds = {
        "chat": (validator(chat_path, "CreateChatCompletionRequest"), lambda p: not p.name.endswith(".responses.json")),
        "responses": (validator(responses_path, "CreateResponse"), lambda p: p.name.endswith(".responses.json")),
    }
    files = sorted(p for d in dirs for p in pathlib.Path(d).glob("*.json"))
    failed = 0
    for kind, (v, mine) in kinds.items():
        chosen = [f for f in files if mine(f)]
        if not chosen:
            print(f"schema: no {kind} request bodies were recorded", file=sys.stderr)
            return 1
        bad = 0
        for f in chosen:
            errors = sorted(v.iter_errors(json.loads(f.read_text())), key=lambda e: list(e.path))
            if errors:
                bad += 1
                for e in errors[:5]:
                    print(f"schema: {f.name}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message[:300]}", file=sys.stderr)
        print(f"schema ({kind}): {len(chosen) - bad} passed, {bad} failed")
        failed += bad
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
