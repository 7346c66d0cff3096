#!/usr/bin/env python3
"""Validates every request body the tests recorded against the official OpenAI schemas, by the
name it was recorded under:
  NAME.json                 Chat Completions body       CreateChatCompletionRequest
  NAME.responses.json       Responses body              CreateResponse
  NAME.file.json            a Batch API upload's form   CreateFileRequest
  NAME.batchinput.json      an input file's line        BatchRequestInput, its body as the request
                                                        its url names (chat or Responses)
  NAME.batchcreate.json     a batch's creation          CreateBatchRequest
and what the test server's Batch API answered (so the fake speaks the real shapes):
  NAME.fileobject.json      OpenAIFile    NAME.batchobject.json   Batch
  NAME.batchlist.json       ListBatchesResponse    NAME.batchoutput.json   BatchRequestOutput

usage: validate_requests.py CHAT_SCHEMA.json RESPONSES_SCHEMA.json BATCH_SCHEMA.json DIR [DIR ...]
Fails when a document is invalid, or when no document of some kind was recorded (a check that
saw nothing proves nothing).
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


def kind_of(path):
    parts = path.name.split(".")
    return parts[-2] if len(parts) > 2 else "chat"


def main() -> int:
    chat_path, responses_path, batch_path, *dirs = sys.argv[1:]
    chat = validator(chat_path, "CreateChatCompletionRequest")
    responses = validator(responses_path, "CreateResponse")
    kinds = {
        "chat": chat,
        "responses": responses,
        "file": validator(batch_path, "CreateFileRequest"),
        "batchinput": validator(batch_path, "BatchRequestInput"),
        "batchcreate": validator(batch_path, "CreateBatchRequest"),
        "fileobject": validator(batch_path, "OpenAIFile"),
        "batchobject": validator(batch_path, "Batch"),
        "batchlist": validator(batch_path, "ListBatchesResponse"),
        "batchoutput": validator(batch_path, "BatchRequestOutput"),
    }
    by_url = {"/v1/chat/completions": chat, "/v1/responses": responses}
    files = sorted(p for d in dirs for p in pathlib.Path(d).glob("*.json"))
    failed = 0

    def check(v, doc, name):
        errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
        for e in errors[:5]:
            print(f"schema: {name}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message[:300]}", file=sys.stderr)
        return not errors

    for kind, v in kinds.items():
        chosen = [f for f in files if kind_of(f) == kind]
        if not chosen:
            print(f"schema: no {kind} documents were recorded", file=sys.stderr)
            return 1
        bad = 0
        for f in chosen:
            doc = json.loads(f.read_text())
            ok = check(v, doc, f.name)
            if kind == "batchinput":
                body_validator = by_url.get(doc.get("url"))
                if body_validator is None:
                    print(f"schema: {f.name}: url {doc.get('url')!r} is not an endpoint promptline sends", file=sys.stderr)
                    ok = False
                else:
                    ok = check(body_validator, doc.get("body"), f.name + " body") and ok
            bad += 0 if ok else 1
        print(f"schema ({kind}): {len(chosen) - bad} passed, {bad} failed")
        failed += bad
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
