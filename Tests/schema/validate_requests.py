#!/usr/bin/env python3
"""Validates every request body the Swift tests recorded against the official OpenAI schema.

usage: validate_requests.py SCHEMA.json DIR [DIR ...]
Fails when a body is invalid, or when no body was recorded at all (a check that saw nothing
proves nothing).
"""
import json
import pathlib
import sys

import jsonschema
from referencing import Registry, Resource


def main() -> int:
    schema_path, *dirs = sys.argv[1:]
    schema = json.loads(pathlib.Path(schema_path).read_text())
    resource = Resource.from_contents(schema)
    registry = Registry().with_resource("urn:openai", resource)
    validator = jsonschema.Draft202012Validator(
        {"$ref": "urn:openai#/$defs/CreateChatCompletionRequest"}, registry=registry
    )
    files = sorted(p for d in dirs for p in pathlib.Path(d).glob("*.json"))
    if not files:
        print("schema: no request bodies were recorded", file=sys.stderr)
        return 1
    failed = 0
    for f in files:
        body = json.loads(f.read_text())
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        if errors:
            failed += 1
            for e in errors[:5]:
                print(f"schema: {f.name}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message[:300]}", file=sys.stderr)
    print(f"schema: {len(files) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
